"""The evaluation's clients and staff: the default config.toml's (Acme, Globex; Ana, Ben, Dev,
Morgan) and three more that exist only here (Tyler, Kessler, Lune), so that German and French
mail comes from clients who would write it."""

from __future__ import annotations

CLIENTS_TOML = """\
[[clients]]
name = "Acme"
senders = ["*@acme.com", "bob@gmail.com"]
aliases = ["ACME Corp"]

[[clients]]
name = "Globex"
senders = ["*@globex.example"]

[[clients]]
name = "Tyler"
senders = ["*@tyler-outdoor.co.uk"]
aliases = ["Tyler Outdoor"]

[[clients]]
name = "Kessler"
senders = ["*@brauerei-kessler.de"]
aliases = ["Brauerei Kessler", "Privatbrauerei Kessler"]

[[clients]]
name = "Lune"
senders = ["*@maisonlune.fr"]
aliases = ["Maison Lune"]
"""

STAFF_TOML = """\
[[staff]]
name = "Ana"
email = "ana@agency.test"
role = "producer"
queues = ["content"]
wip_limit = 3

[[staff]]
name = "Ben"
email = "ben@agency.test"
role = "lead"
queues = ["content", "design"]
wip_limit = 5

[[staff]]
name = "Dev"
email = "dev@agency.test"
role = "producer"
queues = ["dev", "revision"]

[[staff]]
name = "Morgan"
email = "morgan@agency.test"
role = "manager"
queues = ["triage", "strategy"]
wip_limit = 10

[[queues]]
name = "triage"
owner = "Morgan"
"""
