"""Copy-me provider: a complete, working adapter for an imaginary JSON API.

To add a vendor ``acme``: copy this folder to ``providers/acme/``, rename
``TemplateProvider`` / ``NAME``, then change the four marked pieces. What is required and
what is optional:

==========================  ========  =====================================================
piece                       required  what it does
==========================  ========  =====================================================
``NAME``                    yes       lower-case id; env prefix ``TICKVAULT_ACME_``
``DEFAULT_SETTINGS``        yes       public base URL, default rate limit
``capabilities``            yes       asset classes, timeframes (history, page size), kinds,
                                      credentials, rate limit
``plan(query, tf)``         yes       pure: canonical query -> vendor spelling
``extract(session, plan)``  yes       the only I/O: every page via ``session.get_json``
``transform(raw, plan)``    yes       pure: payload -> canonical Arrow (+ ``finish``); fuzzed
``auth(settings)``          optional  headers / query params carrying the key (default none)
``classify(reply)``         optional  vendor error bodies -> typed errors (default table)
``OPTIONS``                 optional  extra ``TICKVAULT_ACME_<OPTION>`` settings
``corporate_actions(...)``  optional  splits/dividends (declare ``DataKind.ACTIONS``)
module docstring            yes       the vendor's conventions: timestamps, adjustment,
                                      paging, symbols — and a test for each
==========================  ========  =====================================================

Tests to copy (see ``tests/providers/http/test_http_template.py`` and docs/providers.md):
a :class:`~tickvault.testing.provider_conformance.ProviderConformance` subclass over the
vendor's recorded payloads, a fuzz test of ``transform`` with
:func:`~tickvault.testing.provider_conformance.mutated_payloads`, and the error paths with
:class:`~tickvault.testing.replay.Fault`.
"""

from tickvault.providers._template._provider import TemplatePlan, TemplateProvider, transform_page

__all__ = ["TemplatePlan", "TemplateProvider", "transform_page"]
