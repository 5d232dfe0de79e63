// Writes src/tickvault/service/static/build-stamp.json: a hash of the dashboard's sources, so a
// test (tests/dashboard/test_bundle.py) can tell when the committed bundle is older than web/.
//
// The hash is sha256 over lines "<sha256 of file>  <path relative to web/>\n" for the files
// below, sorted by path, with CRLF read as LF (a Windows checkout hashes the same). No time or
// machine goes into the stamp, so rebuilding unchanged sources changes nothing in git.
//
//   node scripts/stamp.mjs          write the stamp (npm run build does this last)
//   node scripts/stamp.mjs --check  exit 1 if the stamp does not match the sources

import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const web = dirname(dirname(fileURLToPath(import.meta.url)));
const stampPath = join(web, "..", "src", "tickvault", "service", "static", "build-stamp.json");
const ROOTS = ["index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts", "src"];

function walk(path) {
  if (statSync(path).isDirectory()) return readdirSync(path).flatMap((name) => walk(join(path, name)));
  return [path];
}

export function sourceHash() {
  const files = ROOTS.flatMap((r) => walk(join(web, r)))
    .map((p) => relative(web, p).split(sep).join("/"))
    .sort();
  const lines = files.map((rel) => {
    const text = readFileSync(join(web, rel)).toString("binary").replaceAll("\r\n", "\n");
    return `${createHash("sha256").update(text, "binary").digest("hex")}  ${rel}\n`;
  });
  return { sha256: createHash("sha256").update(lines.join("")).digest("hex"), files: files.length };
}

const version = (pkg) => JSON.parse(readFileSync(join(web, "node_modules", pkg, "package.json"), "utf8")).version;

const { sha256, files } = sourceHash();
if (process.argv.includes("--check")) {
  let stamped = null;
  try {
    stamped = JSON.parse(readFileSync(stampPath, "utf8")).source_sha256;
  } catch {
    stamped = null;
  }
  if (stamped !== sha256) {
    console.error(`the dashboard bundle is stale: run \`npm ci && npm run build\` in web/ (${stamped} != ${sha256})`);
    process.exit(1);
  }
  console.log("the dashboard bundle matches web/");
} else {
  const stamp = {
    source_sha256: sha256,
    source_files: files,
    built_with: { vite: version("vite"), "lightweight-charts": version("lightweight-charts"),
      typescript: version("typescript") },
    rebuild: "cd web && npm ci && npm run build",
  };
  writeFileSync(stampPath, `${JSON.stringify(stamp, null, 2)}\n`);
  console.log(`wrote ${relative(process.cwd(), stampPath)} (${sha256.slice(0, 12)}, ${files} files)`);
}
