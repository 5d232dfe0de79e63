// Builds the dashboard into the Python package, so `pip install tickvault` ships it and the
// FastAPI app serves it at `/` with no Node at runtime (docs/dashboard.md).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const outDir = fileURLToPath(new URL("../src/tickvault/service/static", import.meta.url));
// `npm run dev` proxies the API to a running `tickvault serve` (override with TICKVAULT_API).
const api = process.env.TICKVAULT_API ?? "http://127.0.0.1:8001";

export default defineConfig({
  // Relative asset URLs: the page also works behind a reverse proxy that mounts it under a prefix.
  base: "./",
  build: {
    outDir,
    emptyOutDir: true,
    target: "es2022",
    // One small JS file and one CSS file; no source maps in the committed bundle.
    sourcemap: false,
    chunkSizeWarningLimit: 400,
    assetsDir: "assets",
  },
  server: {
    proxy: {
      "/v1/stream": { target: api.replace(/^http/, "ws"), ws: true },
      "/v1": api,
      "/health": api,
      "/metrics": api,
    },
  },
});
