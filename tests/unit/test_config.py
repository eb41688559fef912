import re
from pathlib import Path

import pytest

from dispatchd.config import load_config
from dispatchd.defaults import default_dir
from dispatchd.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCHD_IMAP_PASSWORD", "imap-secret")
    monkeypatch.setenv("DISPATCHD_SMTP_PASSWORD", "smtp-secret")


def test_shipped_example_loads_as_written(secrets: None) -> None:
    config = load_config(PROJECT / "config.toml")
    assert config.mailbox.host == "imap.example.com" and config.mailbox.port == 993
    assert config.mailbox.tls == "ssl" and config.mailbox.address == "requests@example.com"
    assert config.mailbox.password.reveal() == "imap-secret"
    assert config.smtp.from_address == "Example Agency <requests@example.com>"
    assert config.database_url == f"sqlite:///{PROJECT / 'dispatchd.db'}"
    assert config.clients[0].owns_sender("someone@ACME.com") and config.clients[0].owns_sender("bob@gmail.com")
    assert not config.clients[0].owns_sender("eve@gmail.com")
    assert config.staff[0].wip_limit == 3 and config.staff[0].queues == ("content",)
    assert [s.name for s in config.queue_owners("content")] == ["Ben"]
    assert [s.name for s in config.queue_owners("triage")] == ["Morgan"]


def test_readme_example_keys_work(tmp_path: Path, secrets: None) -> None:
    readme = (PROJECT / "README.md").read_text()
    block = re.search(r"```toml\n(\[mailbox\].*?)```", readme, re.S)
    assert block, "README must show the config example"
    path = tmp_path / "config.toml"
    path.write_text(block.group(1))
    config = load_config(path)
    assert config.staff[0].role == "producer" and config.clients[0].aliases == ("ACME Corp",)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


BASE = """\
[mailbox]
host = "imap.test"
username = "requests@agency.test"
password_env = "DISPATCHD_IMAP_PASSWORD"
[smtp]
host = "smtp.test"
from = "requests@agency.test"
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return [str(p) for p in caught.value.problems]


def test_minimal_config_has_sensible_defaults(tmp_path: Path, secrets: None) -> None:
    config = load_config(write(tmp_path, BASE))
    assert config.mailbox.port == 993 and config.smtp.port == 587 and config.smtp.tls == "starttls"
    assert config.mailbox.processed_folder == "Processed" and config.mailbox.mode == "idle"
    assert config.rules_dir == default_dir("rules"), "no rules/ beside it: the shipped rules"
    (tmp_path / "rules").mkdir()
    assert load_config(tmp_path / "config.toml").rules_dir == tmp_path / "rules"


def test_inline_password_is_refused_with_line(tmp_path: Path, secrets: None) -> None:
    found = problems(tmp_path, BASE.replace('password_env = "DISPATCHD_IMAP_PASSWORD"', 'password = "hunter2"'))
    assert any(f"{tmp_path / 'config.toml'}:4: mailbox.password: inline secrets are refused" in p for p in found)
    assert not any("hunter2" in p for p in found)


def test_missing_env_var_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPATCHD_IMAP_PASSWORD", raising=False)
    found = problems(tmp_path, BASE)
    assert any(":4: mailbox.password_env: environment variable DISPATCHD_IMAP_PASSWORD is not set" in p for p in found)


def test_password_file_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "imap.secret").write_text("s3cret\n")
    config = load_config(write(tmp_path, BASE.replace('password_env = "DISPATCHD_IMAP_PASSWORD"',
                                                      'password_file = "imap.secret"')))
    assert config.mailbox.password.reveal() == "s3cret"
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize("addition, expected", [
    ('[[staff]]\nname = "Loop"\nemail = "requests@agency.test"\n',
     ":10: staff[0].email: requests@agency.test is the intake address; notifications to it would loop"),
    ('[[clients]]\nname = "Us"\nsenders = ["*@agency.test"]\n',
     ":10: clients[0].senders: pattern '*@agency.test' matches our own address"),
    ('[[staff]]\nname = "A"\nemail = "a@agency.test"\nrole = "boss"\n',
     ":11: staff[0].role: must be one of producer, lead, manager; got 'boss'"),
    ('[[staff]]\nname = "A"\nemail = "not-an-address"\n', ":10: staff[0].email: 'not-an-address' is not an email address"),
    ('[[clients]]\nname = "X"\n', ":8: clients[0].senders: list at least one address"),
    ('[calendar]\ntimezone = "Mars/Olympus"\n', ":9: calendar.timezone: unknown time zone 'Mars/Olympus'"),
    ('[calendar]\nhours = "17:00-09:00"\n', ":9: calendar.hours: '17:00-09:00' is not a valid opening time range"),
    ('[calendar]\nholidays_country = "XX"\n', ":9: calendar.holidays_country:"),
    ('[database]\nurl = 5\n', ":9: database.url: must be a str, not int"),
    ('[database]\nurl = "postgresql://app:hunter2@db/dispatchd"\n', ":9: database.url: inline secrets are refused"),
    ('[database]\nurl = "mysql://db/dispatchd"\n', ":9: database.url: must be sqlite:///FILE or postgresql://"),
    ('[intake]\nreply_to_malformd = true\n', ":9: intake.reply_to_malformd: unknown key"),
    ('connections = 0\n', ":8: smtp.connections: must be between 1 and 20, not 0"),
    ('[[queues]]\nname = "triage"\nowner = "Nobody"\n', ":10: queues[0].owner: no [[staff]] named 'Nobody'"),
    # issue 16: who covers for whom must be staff, and the chain must end somewhere
    ('[[staff]]\nname = "A"\nemail = "a@agency.test"\nbackup = "Zed"\n', ":11: staff[0].backup: no [[staff]] named 'Zed'"),
    ('[[staff]]\nname = "A"\nemail = "a@agency.test"\nbackup = "a"\n', ":11: staff[0].backup: A cannot be their own"),
    ('[[staff]]\nname = "A"\nemail = "a@agency.test"\nbackup = "B"\n[[staff]]\nname = "B"\nemail = "b@agency.test"\n'
     'backup = "C"\n[[staff]]\nname = "C"\nemail = "c@agency.test"\nbackup = "A"\n',
     ":11: staff[0].backup: backups go round in a circle: A -> B -> C -> A; someone must end it"),
    ('[[staff]]\nname = "A"\nemail = "a@agency.test"\nhours = "13:00-09:00"\n',
     ":11: staff[0].hours: '13:00-09:00' is not a valid opening time range"),
    ('[[staff]]\nname = "A"\nemail = "a@agency.test"\nworkdays = ["mon", "funday"]\n',
     ":11: staff[0].workdays: unknown weekday 'funday'"),
    ('[[staff]]\nname = "A"\nemail = "a@agency.test"\nmax_per_day = 0\n', ":11: staff[0].max_per_day: must be between 1"),
    ('[[clients]]\nname = "Kunde"\nsenders = ["*@kunde.test"]\nlanguage = "German"\n',
     ":11: clients[0].language: no [[staff]] has 'german' in their skills"),
    ('[[clients]]\nname = "X"\nsenders = ["*@x.test"]\nowner = "Zed"\npreferred = ["Yan"]\n',
     ":11: clients[0].owner: no [[staff]] named 'Zed'"),
    ('[[clients]]\nname = "X"\nsenders = ["*@x.test"]\npreferred = ["Yan"]\n',
     ":11: clients[0].preferred: no [[staff]] named 'Yan'"),
])
def test_refusals_name_file_line_key_and_reason(tmp_path: Path, secrets: None, addition: str, expected: str) -> None:
    found = problems(tmp_path, BASE + addition)
    assert any(expected in p for p in found), found
    assert all(p.startswith(str(tmp_path / "config.toml")) for p in found)


def test_syntax_error_has_line(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE + "[smtp\n")
    assert any(":8:" in p and "not valid TOML" in p for p in found), found


def test_all_problems_reported_at_once(tmp_path: Path, secrets: None) -> None:
    found = problems(tmp_path, BASE.replace('host = "imap.test"\n', "") + 'port = "x"\n')
    assert any("mailbox.host: is required" in p for p in found)
    assert any("smtp.port: must be a int" in p for p in found)


MAILBOXES = """\
[[mailbox]]
name = "brand-a"
host = "imap.test"
username = "requests@agency.test"
password_env = "DISPATCHD_IMAP_PASSWORD"

[[mailbox]]
name = "brand-b"
host = "imap.test"
username = "hello@brand-b.test"
password_env = "DISPATCHD_IMAP_PASSWORD"
default_client = "Acme"
queue_prefix = "b/"

[smtp]
host = "smtp.test"
from = "requests@agency.test"

[[clients]]
name = "Acme"
senders = ["*@acme.test"]
"""


def test_several_mailboxes_each_with_their_defaults(tmp_path: Path, secrets: None) -> None:
    config = load_config(write(tmp_path, MAILBOXES))
    assert [m.name for m in config.mailboxes] == ["brand-a", "brand-b"]
    assert config.mailbox.name == "brand-a", "the first answers for mail of no one mailbox"
    assert config.intake_addresses == {"requests@agency.test", "hello@brand-b.test"}
    brand_b = config.mailbox_named("brand-b")
    assert (brand_b.default_client, brand_b.queue_prefix, brand_b.account) == (
        "Acme", "b/", "hello@brand-b.test@imap.test:993")
    assert config.mailbox_named(None).name == "brand-a" and config.mailbox_named("gone").name == "brand-a"
    assert config.mailbox_reading("hello@brand-b.test@imap.test:993", "INBOX").name == "brand-b"


def test_one_mailbox_is_named_after_its_address(tmp_path: Path, secrets: None) -> None:
    assert load_config(write(tmp_path, BASE)).mailbox.name == "requests@agency.test"


@pytest.mark.parametrize("change, expected", [
    (('name = "brand-b"', 'name = "brand-a"'), ":8: mailbox[1].name: 'brand-a' is already mailbox #1"),
    (('hello@brand-b.test', 'requests@agency.test'), "mailbox[1].folder: requests@agency.test@imap.test:993 INBOX "
                                                     "is already read by mailbox #1"),
    (('default_client = "Acme"', 'default_client = "Initech"'),
     ":12: mailbox[1].default_client: no [[clients]] named 'Initech'"),
    (('[[clients]]\nname = "Acme"\nsenders = ["*@acme.test"]', '[[clients]]\nname = "Acme"\nsenders = ["*@brand-b.test"]'),
     "clients[0].senders: pattern '*@brand-b.test' matches our own address hello@brand-b.test"),
])
def test_mailbox_refusals(tmp_path: Path, secrets: None, change: tuple[str, str], expected: str) -> None:
    found = problems(tmp_path, MAILBOXES.replace(*change))
    assert any(expected in p for p in found), found


def test_whom_a_client_is_and_what_clients_read(tmp_path: Path, secrets: None) -> None:
    config = load_config(write(tmp_path, BASE + """\
[intake]
reply_to_unknown_senders = "authenticated"
[[clients]]
name = "Tyler"
senders = ["*@tyler-seo.test"]
contacts = ["Pat@Partner.test"]
digest_to = ["reports@tyler-seo.test"]
[[staff]]
name = "Ana Lopez"
email = "ana@agency.test"
[[staff]]
name = "Ben Okafor"
email = "ben@agency.test"
display_name = "Benny"
[[queues]]
name = "dev"
display_name = "Web team"
"""))
    [tyler] = config.clients
    assert tyler.owns_sender("pat@partner.test") and tyler.may_receive("reports@tyler-seo.test")
    assert not tyler.owns_sender("reports@partner.test")
    assert config.intake.reply_to_unknown_senders == "authenticated" and config.intake.format_help_per_day == 3
    assert [s.client_name for s in config.staff] == ["Ana", "Benny"]
    assert config.queues[0].display_name == "Web team"
    assert load_config(write(tmp_path, BASE)).intake.reply_to_unknown_senders == "never", "off by default"


@pytest.mark.parametrize("addition, expected", [
    ('[[clients]]\nname = "X"\nsenders = ["*@x.test"]\ncontacts = ["*@x.test"]\n',
     "clients[0].contacts: '*@x.test' is not an email address (patterns belong in senders)"),
    ('[[clients]]\nname = "X"\nsenders = ["*@x.test"]\ndigest_to = ["requests@agency.test"]\n',
     "clients[0].digest_to: requests@agency.test is our own address"),
    ('[intake]\nreply_to_unknown_senders = "sometimes"\n',
     'intake.reply_to_unknown_senders: must be false, "authenticated" or true'),
])
def test_trust_settings_refused(tmp_path: Path, secrets: None, addition: str, expected: str) -> None:
    found = problems(tmp_path, BASE + addition)
    assert any(expected in p for p in found), found


def test_integration_destinations_read_and_refused(tmp_path: Path, secrets: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s")
    monkeypatch.setenv("SLACK_URL", "http://hooks.slack.example/services/T/B/X")
    found = problems(tmp_path, BASE + """
[[webhooks]]
name = "crm"
url = "http://crm.example.com/hook"
secret = "inline"
events = ["task.created", "task.exploded"]

[[slack]]
name = "acme"
url_env = "SLACK_URL"
client = "Acme"
events = ["task.created", "task.routed"]

[[teams]]
name = "crm"
url = "https://teams.example/x"
""")
    text = "\n".join(found)
    assert ":11: webhooks[0].url: http://crm.example.com/hook must be https" in text, text
    assert "webhooks[0].secret: inline secrets are refused" in text
    assert "unknown event 'task.exploded'" in text
    assert "slack[0].url_env: the URL must be https" in text and "hooks.slack" not in text, "a secret URL unprinted"
    assert "a client's channel hears only" in text and "not task.routed" in text
    assert "teams[0].name: another destination is named 'crm'" in text
    assert "teams[0].url: inline secrets are refused" in text


def test_integration_destinations_loopback_http_and_defaults(tmp_path: Path, secrets: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s")
    config = load_config(write(tmp_path, BASE + """
[[webhooks]]
name = "local-n8n"
url = "http://127.0.0.1:5678/webhook/x"
secret_env = "HOOK_SECRET"
queues = ["design"]
"""))
    [hook] = config.destinations
    assert hook.kind == "webhook" and hook.target() == "http://127.0.0.1:5678/webhook/x"
    assert hook.filter.queues == ("design",) and hook.concurrency == 4 and hook.max_attempts == 12
    assert len(hook.filter.events) == 10


def test_skills_regions_hours_of_staff_and_what_clients_ask(tmp_path: Path, secrets: None) -> None:
    config = load_config(write(tmp_path, BASE + """\
[calendar]
hours = "08:00-16:00"
[[staff]]
name = "Ana"
email = "ana@agency.test"
skills = ["Shopify", "german"]
regions = ["DACH"]
backup = "Ben"
workdays = ["mon", "tue", "wednesday"]
max_per_day = 4
[[staff]]
name = "Ben"
email = "ben@agency.test"
hours = "09:00-13:00"
[[clients]]
name = "Kunde"
senders = ["*@kunde.test"]
region = "DACH"
language = "German"
owner = "Ben"
preferred = ["Ana"]
"""))
    ana, ben = config.staff
    assert (ana.skills, ana.regions, ana.backup, ana.max_per_day) == (
        frozenset({"shopify", "german"}), frozenset({"DACH"}), "Ben", 4)
    assert str(ana.shift) == "Mon, Tue, Wed 08:00-16:00", "days of her own, the agency's hours"
    assert str(ben.shift) == "Mon, Tue, Wed, Thu, Fri 09:00-13:00", "hours of his own, the agency's days"
    kunde = config.clients[0]
    assert (kunde.region, kunde.language, kunde.owner, kunde.preferred) == ("DACH", "german", "Ben", ("Ana",))


def test_readme_integrations_example_loads(tmp_path: Path, secrets: None, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (PROJECT / "README.md").read_text()
    block = re.search(r"```toml\n(\[\[webhooks\]\].*?)```", readme, re.S)
    assert block, "README shows the integrations example"
    monkeypatch.setenv("DISPATCHD_CRM_SECRET", "s3cret")
    monkeypatch.setenv("ACME_SLACK_WEBHOOK", "https://hooks.slack.com/services/T0/B0/XYZ")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "teams-design-url").write_text("https://example.webhook.office.com/workflows/1\n")
    config = load_config(write(tmp_path, BASE + "[[clients]]\nname = \"Acme\"\nsenders = [\"*@acme.com\"]\n"
                               + block.group(1)))
    crm, slack, teams = config.destinations
    assert crm.filter.events == frozenset({"task.created", "task.delivered"}) and crm.signing is not None
    assert slack.filter.audience.value == "client" and slack.target() == "https://hooks.slack.com/services/T0/B0/XYZ"
    assert teams.filter.queues == ("design",) and teams.target() == "https://example.webhook.office.com/workflows/1"
