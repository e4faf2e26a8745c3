"""The one secret detector: which parts of a text (or which literal) are secrets.

Used by the review rule SEC001 (is this literal a hard-coded secret?) and by the redaction of
everything that can reach a model request (context files, configs, names, docstrings, tool results).
One implementation, so what the reviewer calls a secret is exactly what never leaves the process.

API
===
* :func:`find_secrets` ``(text) -> list[SecretSpan]``: non-overlapping spans, sorted by ``start``.
  A span covers the secret *value* only (the password of a URI, not its user or host; the value of
  ``password = "..."``, not the name), so redacted text still reads.
* :func:`redact` ``(text) -> str``: every span replaced by ``[REDACTED]`` (a PEM block by
  ``[REDACTED PRIVATE KEY]``). Idempotent.
* :func:`literal_secret` ``(name, value, call=None) -> SecretSpan | None``: for code checkers that
  already hold a string literal bound to ``name`` (an assignment target, a keyword argument, a dict
  key). ``call`` is the dotted name of the called function when ``name`` is one of its keywords.
* :func:`is_secret_name` ``(name) -> bool``, :func:`is_placeholder` ``(value) -> bool`` and
  :func:`name_words` ``(name) -> list[str]`` (the lower-case words of any name style).

What counts (``kind`` of a span, confidence in brackets)
========================================================
* ``token:<provider>`` (0.95-0.99): shaped tokens: ``sk-ant-``, OpenAI ``sk-``/``sk-proj-``, Stripe
  ``sk_live_``/``sk_test_``/``rk_live_``/``whsec_``, GitHub ``ghp_``/``gho_``/``ghs_``/``ghu_``/``ghr_``/
  ``github_pat_``, GitLab ``glpat-``, Slack ``xox[abposr]-``/``xapp-``, AWS ``AKIA``/``ASIA`` key ids,
  Google ``AIza`` keys, ``GOCSPX-`` client secrets, ``ya29.`` access tokens, JWTs, npm, PyPI, Hugging
  Face, SendGrid, Databricks, Shopify, DigitalOcean, Mailgun, Square tokens; Slack and Discord
  webhook URLs (the whole URL is the secret); PEM private-key blocks.
* ``uri_credentials`` (0.9): the password of ``scheme://user:password@host``.
* ``authorization_header`` (0.9): ``Authorization: Bearer|Token|Basic|Digest <value>`` and a bare
  ``Bearer <token>``.
* ``basic_auth`` (0.9): ``auth=("user", "pass")``, ``HTTPBasicAuth("user", "pass")``, ``BasicAuth(...)``.
* ``cli_password`` (0.9): ``mysql -p<pass>`` (the MySQL/MariaDB clients only: elsewhere ``-p`` is a
  port), ``--password=...``/``--password ...`` (also ``--token``, ``--api-key``, ``--secret``...),
  ``sshpass -p``, ``docker login -p``, ``curl -u user:pass``.
* ``pgpass`` (0.9): a ``host:port:database:user:password`` line; ``netrc`` (0.9): ``machine h login
  u password p``; ``sql_password`` (0.9): ``IDENTIFIED BY '...'`` / ``PASSWORD '...'``;
  ``connection_string`` (0.9): ``PWD=...`` / ``Password=...`` in an ODBC/ADO.NET/JDBC ``key=value;``
  string with another key (``DRIVER={ODBC Driver 17};SERVER=db;UID=etl;PWD=...``).
* ``key_value`` (0.8 quoted, 0.7 bare): a value bound to a name that names a secret
  (:func:`is_secret_name`) in Python (``DB_PASS = "..."``, ``password="..."`` keywords, dicts), YAML
  (``password: ...``), JSON (``"client_secret": "..."``), env files / shell (``PGPASSWORD=...``,
  ``export TOKEN=...``), INI/properties (``password = ...``), URL query strings and JDBC/ADO
  connection strings (``Password=...;``).
* ``high_entropy`` (0.6): a random-looking string of >= 20 characters (>= 3.5 bits per character,
  letters and digits; hex needs >= 32 characters) within 40 characters after a secret word on the
  same line (``the signing secret is 8f3a...``).

What does not count (decisions, so the reviewer and the redactor agree)
=======================================================================
* **Placeholders** (:func:`is_placeholder`): empty values, ``changeme``, ``password``, ``secret``,
  ``xxx``, ``***``, ``<password>``, ``your_api_key_here``, ``[REDACTED]``, ``None``/``null``/booleans.
  ``changeme`` is a placeholder by decision: it is the documentation convention, and a finding on
  every README-style sample would teach users to ignore SEC001. (A shaped token is always a secret,
  even AWS's documented ``AKIAIOSFODNN7EXAMPLE``: a redactor cannot tell examples from keys.)
* **References**, not values: templates and lookups (``{{ var.value.x }}``, ``{{ conn.pg.password }}``,
  ``{{ env_var('X') }}``, ``${X}``, ``$X``, ``%(x)s``, f-string fields ``{token}``,
  ``os.environ[...]``, ``Variable.get(...)``, any call or attribute such as ``settings.API_KEY``),
  and names that point at a secret instead of holding it (``password_conn_id``, ``secret_name``,
  ``token_path``, ``api_key_header``: the secret word must be the *last* part of the name).
* **Key-file paths**: ``ssh_private_key='/root/.ssh/id_rsa'``, ``key_file: certs/client.pem``,
  ``credentials="gs://bucket/sa.json"``: a path or a file name with a key/cert/config extension.
* **Kubernetes secret references**: ``Secret(deploy_type="env", secret="airflow-secrets", key="pw")``
  and ``V1SecretKeySelector(name=..., key=...)`` name a secret object; keywords of calls named
  ``Secret``/``*SecretKeySelector``/``*SecretVolumeSource``/``*SecretReference``/``SecretStr`` are
  not values (see :data:`REFERENCE_CALLS`).
* Prose: a value of five or more words is a sentence, not a secret.
* In code only (:func:`literal_secret`; the redactor stays strict): a key name made of the name's
  own words (``minio_secret_access_key="access_key"``, the key inside a mounted secret), and a
  Kubernetes object name (lower case, ``-`` and ``.``, no digit) bound to ``<word>_secret`` when
  the word does not make it a secret value (``spark_secret="varsome"`` names a secret object;
  ``client_secret="varsome"`` and ``jwt_secret=...`` are still secrets).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

REDACTED = "[REDACTED]"
REDACTED_KEY = "[REDACTED PRIVATE KEY]"


@dataclass(frozen=True)
class SecretSpan:
    """One secret in a text: ``text[start:end]`` is the secret value.

    :param kind: what shape matched (``token:github``, ``uri_credentials``, ``key_value`` ...; see the
        module docstring).
    :param confidence: 0..1; shaped tokens ~0.95+, structural matches 0.9, key/value 0.7-0.8,
        entropy 0.6. Every span :func:`find_secrets` returns is redacted; the number lets a reviewer
        rank or filter.
    :param name: the key name for ``key_value`` spans (``DB_PASS``), else ``None``.
    """

    kind: str
    start: int
    end: int
    confidence: float
    name: str | None = None


# ------------------------------------------------------------------ names
#: last part of a name that makes it name a secret (compared after splitting on _ - . and camelCase)
_SECRET_PARTS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pwd",
        "pw",
        "passphrase",
        "passcode",
        "secret",
        "token",
        "apikey",
        "credential",
        "credentials",
        "privatekey",
        "secretkey",
        "accesskey",
        "authkey",
        "signingkey",
        "encryptionkey",
        "masterkey",
        "accountkey",
        "clientsecret",
        "sas",
        "dsn",
    }
)
#: ``<qualifier>_key`` names a secret (``api_key``, ``secret_access_key``, ``x-api-key``)
_KEY_QUALIFIERS = frozenset(
    {
        "api",
        "access",
        "secret",
        "private",
        "signing",
        "encryption",
        "master",
        "account",
        "auth",
        "client",
        "session",
        "app",
        "consumer",
        "subscription",
        "license",
        "shared",
        "hmac",
        "webhook",
        "storage",
    }
)
#: a run-together lower-case name ending so names a secret (``PGPASSWORD``, ``csrftoken``, ``APIKEY``)
_SECRET_ENDINGS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "passphrase",
    "accountkey",
)
_NAME_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_KEY_IN_TEXT = r"[A-Za-z_][\w.\-]{0,80}"


def name_words(name: str) -> list[str]:
    """The lower-case words of a snake_case, kebab-case, dotted or camelCase name."""
    return [p.lower() for chunk in re.split(r"[_\-.\s:/]+", name) for p in _NAME_PARTS.findall(chunk)]


def is_secret_name(name: str) -> bool:
    """Whether a variable/key/header name names a secret *value* (``DB_PASS``, ``api_key``, ``X-API-Key``).

    The secret word must end the name: ``password_conn_id``, ``secret_name``, ``token_path``,
    ``max_tokens`` name something else.
    """
    if not name or len(name) > 120:
        return False
    parts = name_words(name)
    if not parts:
        return False
    last = parts[-1]
    if last in _SECRET_PARTS:
        return True
    if last == "key" and len(parts) >= 2 and parts[-2] in _KEY_QUALIFIERS:
        return True
    return last.endswith(_SECRET_ENDINGS) and len(last) > 6


# ------------------------------------------------------------------ values
_PLACEHOLDER_WORDS = frozenset(
    {
        "changeme",
        "change_me",
        "change-me",
        "changeit",
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "none",
        "null",
        "nil",
        "true",
        "false",
        "yes",
        "no",
        "redacted",
        "[redacted]",
        "dummy",
        "example",
        "sample",
        "test",
        "testing",
        "todo",
        "tbd",
        "fixme",
        "placeholder",
        "mypassword",
        "my_password",
        "my-password",
        "yourpassword",
        "your_password",
        "your-password",
        "secretpassword",
        "notasecret",
        "not-a-secret",
        "not_a_secret",
        "required",
        "optional",
        "string",
        "str",
        "default",
        "undefined",
        "empty",
        "unset",
        "masked",
        "hidden",
        "n/a",
        "na",
        "...",
    }
)
_PLACEHOLDER_SHAPES = re.compile(
    r"""(?ix)
    ^(?:
        (.)\1{2,}                                   # xxx, ***, ....
      | <[^<>]*>                                    # <password>
      | \[[^\[\]]*\]                                # [REDACTED], [secret]
      | (?:your|my|insert|replace|enter|put|add)[_\- ].*   # your_api_key_here
      | .*[_\-](?:here|placeholder|goes[_\-]here)
      | example[_\-].* | .*[_\-]example | dummy[_\-].* | fake[_\-].* | test[_\-]?(?:password|secret|token|key)
    )$
    """
)
#: text that makes a value a reference or a template, not the secret itself
_REFERENCE = re.compile(
    r"""(?x)
    \{\{ | \{% | \$\{ | \$\( | ^\$[A-Za-z_{(] | %\([\w.]+\)[sdr] | ^%s$ | ^\{[\w.\[\]'"]*\}$
    | \benv_var\( | \bos\.environ | \bgetenv\( | \bVariable\.get | \blookup\( | ^!vault | ^vault: | ^secret:
    | ^arn:aws:secretsmanager: | ^projects/[^/]+/secrets/ | ^sm://
    """
)
_PATH = re.compile(
    r"""(?ix)
    ^(?: ~?/ | \.{1,2}/ | [a-z]:[\\/] | file:// | (?:gs|s3|s3a|abfss?|wasbs?|hdfs|az)://[^:@\s]+$ )
    | ^[\w.\-/\\]+\.(?:pem|key|crt|cer|csr|p8|p12|pfx|json|jks|keystore|truststore|keytab|pub|ppk|asc|gpg|der|
                       txt|cfg|conf|ini|yaml|yml|toml|env|properties)$
    | (?:^|[\\/])(?:id_rsa|id_ed25519|id_ecdsa|id_dsa)(?:\.pub)?$
    """
)
_NUMBERISH = re.compile(r"^[+-]?\d{1,5}(?:\.\d+)?$")
_PY_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is an empty, example or templated stand-in rather than a secret (see module doc)."""
    v = value.strip().strip("'\"`").strip()
    if not v:
        return True
    if v.lower() in _PLACEHOLDER_WORDS or _PLACEHOLDER_SHAPES.match(v) or "[REDACTED" in v:
        return True
    return _REFERENCE.search(v) is not None


def _is_reference_or_path(value: str) -> bool:
    v = value.strip()
    return _REFERENCE.search(v) is not None or _PATH.search(v) is not None


def _value_is_secret(value: str, *, bare: bool) -> bool:
    """Whether a value bound to a secret name is a secret literal (not a placeholder, path, reference)."""
    v = value.strip()
    if is_placeholder(v) or _is_reference_or_path(v):
        return False
    if len(v.split()) >= 5:
        return False  # a sentence (a description, a docstring), not a secret
    if _NUMBERISH.match(v):
        return False  # a count, a port, a timeout
    if bare:
        if _DOTTED.match(v):
            return False  # settings.API_KEY, conn.password
        if _PY_IDENT.match(v) and (is_secret_name(v) or v in {"self", "cls", "str", "int", "bytes"}):
            return False  # password = db_password (a variable holding it, not the value)
        if v[:1] in "!&*|>@$%":
            return False  # YAML tags, anchors, block scalars; $VAR / ${VAR} / %VAR% references
    return True


def _entropy(s: str) -> float:
    counts = Counter(s)
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _random_looking(s: str) -> bool:
    if len(s) < 20 or not any(c.isdigit() for c in s) or not any(c.isalpha() for c in s):
        return False
    if re.fullmatch(r"[a-z]+(?:[_\-][a-z0-9]+)+", s) or re.fullmatch(
        r"[A-Za-z]+(?:[_\-][A-Za-z]+)*(?:[_\-]\d{1,4})?", s
    ):
        return False  # snake_case / kebab-case / SHOUTED-WORDS-42 identifiers
    if re.fullmatch(r"[0-9a-fA-F\-]+", s):
        return len(s.replace("-", "")) >= 32 and _entropy(s) >= 3.0
    return _entropy(s) >= 3.5


# ------------------------------------------------------------------ patterns
Validator = Callable[[re.Match[str], str], bool]


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern[str]
    confidence: float
    needles: tuple[str, ...]  # lower-case substrings; the regex runs only when one is in the text
    group: str | None = (
        "val"  # named group(s) holding the value: "val", else "val2", "val3"; None = whole match
    )
    validate: Validator | None = None
    replacement: str = REDACTED


def _not_placeholder(m: re.Match[str], _text: str) -> bool:
    return not is_placeholder(_value(m)) and not _is_reference_or_path(_value(m))


def _value(m: re.Match[str]) -> str:
    for g in ("val", "val2", "val3"):
        if g in m.re.groupindex and m.group(g) is not None:
            return m.group(g)
    return m.group(0)


def _token(
    kind: str, regex: str, needles: tuple[str, ...], confidence: float = 0.97, flags: int = 0
) -> _Pattern:
    return _Pattern(f"token:{kind}", re.compile(regex, flags), confidence, needles, group=None)


def _header_value(m: re.Match[str], text: str) -> bool:
    v = _value(m)
    if is_placeholder(v) or v.endswith(("+", '"+', "'+")):
        return False
    # prose says "bearer authentication": a credential has a digit or a symbol, not just letters
    return not v.isalpha()


def _uri_password(m: re.Match[str], text: str) -> bool:
    v = _value(m)
    return not is_placeholder(v) and "{" not in v and "$" not in v[:1]


def _pgpass(m: re.Match[str], text: str) -> bool:
    host = m.group("host")
    if not (host == "*" or any(c.isalpha() for c in host) or host.count(".") == 3):
        return False
    return not is_placeholder(m.group("val"))


#: another key of an ODBC / ADO.NET / JDBC connection string on the same line, ended by ``;``
_CONN_STRING_KEY = re.compile(
    r"(?i)(?<![\w\-.])(?:driver|server|data[ \t]+source|address|addr|host|hostname|dsn|database|"
    r"initial[ \t]+catalog|uid|user[ \t]*id|user|username|port)[ \t]*=[^;\n]*;"
)


def _connection_string_password(m: re.Match[str], text: str) -> bool:
    """``PWD=...`` / ``Password=...`` in a ``key=value;`` connection string (``DRIVER={ODBC Driver 17};
    SERVER=db;UID=etl;PWD=s3cret``): the name is in the text, not a variable, so the key/value
    reading of code (:func:`literal_secret`) cannot see it."""
    v = _value(m).strip()
    if v.startswith("{") and v.endswith("}") and not _REFERENCE.search(v):
        v = v[1:-1]  # ODBC quotes a value with ; in braces: PWD={a;b}
    if not v or is_placeholder(v) or _is_reference_or_path(v) or _NUMBERISH.match(v):
        return False
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    return _CONN_STRING_KEY.search(text, start, end if end >= 0 else len(text)) is not None


def _high_entropy(m: re.Match[str], text: str) -> bool:
    v = _value(m)
    if "/" in v and not (any(c.isupper() for c in v) and any(c.islower() for c in v)):
        return False  # a URL path (oauth/v1/access-tokens), not base64
    return (
        _random_looking(v)
        and not _is_reference_or_path(v)
        and "://" not in text[m.start("val") - 3 : m.start("val")]
    )


_SECRET_WORDS_RE = r"(?:password|passwd|passphrase|secret|token|api[ _\-]?key|access[ _\-]?key|private[ _\-]?key|credential|bearer|signing[ _\-]?key)"

_TOKENS: list[_Pattern] = [
    _token("anthropic", r"\bsk-ant-[A-Za-z0-9_\-]{8,}", ("sk-ant-",), 0.99),
    _token("openai", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", ("sk-",), 0.9),
    _token("stripe", r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}", ("_live_", "_test_"), 0.99),
    _token("stripe_webhook", r"\bwhsec_[A-Za-z0-9]{20,}", ("whsec_",), 0.99),
    _token("github", r"\bgh[pousr]_[A-Za-z0-9]{20,}", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), 0.99),
    _token("github_pat", r"\bgithub_pat_[A-Za-z0-9_]{20,}", ("github_pat_",), 0.99),
    _token("gitlab", r"\bglpat-[A-Za-z0-9_\-]{20,}", ("glpat-",), 0.99),
    _token("slack", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", ("xox",), 0.99),
    _token("slack_app", r"\bxapp-\d-[A-Za-z0-9\-]{10,}", ("xapp-",), 0.99),
    _token(
        "aws_access_key_id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        ("akia", "asia", "abia", "acca"),
        0.97,
    ),
    _token("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}", ("aiza",), 0.99),
    _token("google_oauth_secret", r"\bGOCSPX-[A-Za-z0-9_\-]{20,}", ("gocspx-",), 0.99),
    _token("google_access_token", r"\bya29\.[A-Za-z0-9_\-]{20,}", ("ya29.",), 0.97),
    _token("jwt", r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}", ("eyj",), 0.95),
    _token("npm", r"\bnpm_[A-Za-z0-9]{36}\b", ("npm_",), 0.97),
    _token("pypi", r"\bpypi-AgE[A-Za-z0-9_\-]{20,}", ("pypi-",), 0.99),
    _token("huggingface", r"\bhf_[A-Za-z0-9]{30,}\b", ("hf_",), 0.95),
    _token("sendgrid", r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}", ("sg.",), 0.97),
    _token("databricks", r"\bdapi[0-9a-f]{32}(?:-\d)?\b", ("dapi",), 0.97),
    _token(
        "shopify", r"\bshp(?:at|ss|ca|pa)_[0-9a-fA-F]{32}\b", ("shpat_", "shpss_", "shpca_", "shppa_"), 0.99
    ),
    _token("digitalocean", r"\bdo[por]_v1_[0-9a-f]{64}\b", ("_v1_",), 0.99),
    _token("mailgun", r"\bkey-[0-9a-f]{32}\b", ("key-",), 0.9),
    _token("square", r"\bsq0(?:atp|csp)-[A-Za-z0-9_\-]{22,}", ("sq0",), 0.99),
    _token(
        "slack_webhook",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_\-]{20,}",
        ("hooks.slack.com",),
        0.99,
    ),
    _token(
        "discord_webhook",
        r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_\-]+",
        ("discord",),
        0.99,
    ),
]

_STRUCTURAL: list[_Pattern] = [
    _Pattern(
        "private_key",
        re.compile(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.S,
        ),
        0.99,
        ("private key",),
        group=None,
        replacement=REDACTED_KEY,
    ),
    _Pattern(
        "uri_credentials",
        re.compile(r"(?i)\b[a-z][a-z0-9+.\-]{1,30}://[^\s:/@'\"<>]*:(?P<val>[^\s@/'\"<>]+)@"),
        0.9,
        ("://",),
        validate=_uri_password,
    ),
    _Pattern(
        "authorization_header",
        re.compile(
            r"(?i)\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*(?:[\"']|\(\s*[\"'])?[ \t]*"
            r"(?:bearer|token|basic|digest|apikey|api-key|key|sso-key|otp)[ \t]+(?P<val>[^\s\"',;)]{6,})"
        ),
        0.9,
        ("authorization",),
        validate=_header_value,
    ),
    _Pattern(
        "authorization_header",
        re.compile(r"(?i)\bbearer[ \t]+(?P<val>[A-Za-z0-9._~+/\-]{12,}=*)"),
        0.85,
        ("bearer",),
        validate=_header_value,
    ),
    _Pattern(
        "authorization_header",
        re.compile(r"(?i)\bbasic[ \t]+(?P<val>[A-Za-z0-9+/]{12,}={0,2})(?![\w+/=])"),
        0.8,
        ("basic",),
        validate=lambda m, t: (
            _header_value(m, t) and (any(c.isdigit() for c in m.group("val")) or m.group("val").endswith("="))
        ),
    ),
    _Pattern(
        "basic_auth",
        re.compile(
            r"(?i)(?:\bauth\s*=\s*[\(\[]|\b(?:HTTPBasicAuth|HTTPDigestAuth|BasicAuth|DigestAuth|HTTPProxyAuth)\s*\()"
            r"\s*(?:[rbuRBU]?[\"'][^\"'\n]*[\"']|\w+)\s*,\s*[rbuRBU]?(?P<q>[\"'])(?P<val>[^\"'\n]+)(?P=q)"
        ),
        0.9,
        ("auth",),
        validate=_not_placeholder,
    ),
    _Pattern(
        "cli_password",
        re.compile(
            r"(?i)\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlshow|mysqlcheck|mysqlpump|mysqlsh|mariadb(?:-dump|-admin)?)\b"
            r"[^\n|;&]*?(?<=\s)-p(?:\"(?P<val>[^\"\n]+)\"|'(?P<val2>[^'\n]+)'|(?P<val3>[^\s\"'\-][^\s\"'`]*))"
        ),
        0.9,
        ("mysql", "mariadb"),
        validate=_not_placeholder,
    ),
    _Pattern(
        "cli_password",
        re.compile(
            r"(?i)(?<![\w\-])--(?!no-)(?:[a-z]+-)*(?:password|passwd|pass|pwd|token|api-?key|secret|secret-key|access-key|"
            r"client-secret|auth-token)(?:=|[ \t]+)(?:\"(?P<val>[^\"\n]+)\"|'(?P<val2>[^'\n]+)'|(?P<val3>[^\s\"'\-\\][^\s\"'`]*))"
        ),
        0.9,
        ("--",),
        validate=_not_placeholder,
    ),
    _Pattern(
        "cli_password",
        re.compile(r"(?i)\b(?:sshpass|docker\s+login\b[^\n]*?)\s+-p[ \t]*(?P<val>[^\s\-][^\s]*)"),
        0.9,
        ("sshpass", "docker"),
        validate=_not_placeholder,
    ),
    _Pattern(
        "cli_password",
        re.compile(
            r"(?i)\b(?:curl|wget|http)\b[^\n]*?\s(?:-u|--user)[ \t]+[\"']?[^\s:\"']*:(?P<val>[^\s\"'@]+)"
        ),
        0.9,
        ("curl", "wget", "http"),
        validate=_not_placeholder,
    ),
    _Pattern(
        "pgpass",
        re.compile(
            r"(?m)^[ \t]*(?P<host>\*|[A-Za-z0-9_.\-\[\]]+):(?:\d{1,5}|\*):[^:\s]+:[^:\s]+:(?P<val>(?:\\:|[^\s])+?)[ \t]*$"
        ),
        0.9,
        (":",),
        validate=_pgpass,
    ),
    _Pattern(
        "netrc",
        re.compile(r"(?i)\bmachine\s+\S+\s+login\s+\S+\s+password\s+(?P<val>\S+)"),
        0.9,
        ("machine",),
        validate=_not_placeholder,
    ),
    _Pattern(
        "sql_password",
        re.compile(r"(?i)\b(?:identified\s+by|password)\s+(?P<q>['\"])(?P<val>[^'\"\n]{1,200})(?P=q)"),
        0.9,
        ("identified", "password"),
        validate=_not_placeholder,
    ),
    _Pattern(
        "connection_string",
        re.compile(r"(?i)(?<![\w\-.])(?:pwd|password)[ \t]*=[ \t]*(?P<val>\{[^}\n]*\}|[^;\"'\n]+)"),
        0.9,
        ("pwd", "password"),
        validate=_connection_string_password,
    ),
]

# key/value: the name is checked by is_secret_name and the value by _value_is_secret in code
_KV_QUOTED = re.compile(
    rf"(?<![\w.\-$])[\"']?(?P<key>{_KEY_IN_TEXT})[\"']?(?:[ \t]*:[ \t]*[A-Za-z_][\w.\[\]| ,]{{0,40}}?(?=[ \t]*=))?"
    r"[ \t]*(?P<op>:=|=>|=(?!=)|:)[ \t]*"
    r"(?P<prefix>[rRbBuUfF]{0,2})(?P<q>\"\"\"|'''|[\"'`])(?P<val>(?:(?!(?P=q))[^\n\\]|\\.){0,500})(?P=q)"
)
_KV_BARE = re.compile(
    rf"(?<![\w.\-$])[\"']?(?P<key>{_KEY_IN_TEXT})[\"']?[ \t]*(?P<op>=(?!=)|:(?=[ \t]))[ \t]*"
    r"(?P<val>[^\s\"'`,;(){}\[\]&<>#]+)(?P<after>[(.\[]?)"
)
_KV_NEEDLES = ("pass", "pwd", "pw", "secret", "token", "key", "credential", "sas", "dsn", "auth")
_HIGH_ENTROPY = re.compile(
    # the same line: a JSON-escaped "\\n" ends it too (redaction also runs over serialised results)
    rf"(?i)\b{_SECRET_WORDS_RE}\w*\b(?:(?!\\n)[^\n]){{0,40}}?(?<![A-Za-z0-9+/=_\-])(?P<val>[A-Za-z0-9+/=_\-]{{20,}})(?![A-Za-z0-9+/=_\-])"
)

#: calls whose keywords name a secret object instead of holding a secret (Kubernetes, pydantic)
REFERENCE_CALLS = re.compile(
    r"(?:^|\.)(?:Secret|V1Secret\w*|\w*SecretKeySelector|\w*SecretVolumeSource|\w*SecretReference|SecretStr|"
    r"SecretEnvSource|\w*SecretProjection)$"
)
_CALL_BEFORE = re.compile(r"([A-Za-z_][\w.]*)\s*\($")


def _enclosing_call(text: str, pos: int, window: int = 600) -> str | None:
    """The dotted name of the call whose argument list contains ``pos`` (a text-level look-back)."""
    depth = 0
    lo = max(0, pos - window)
    i = pos - 1
    while i >= lo:
        c = text[i]
        if c == ")":
            depth += 1
        elif c == "(":
            if depth == 0:
                m = _CALL_BEFORE.search(text[max(0, i - 120) : i + 1])
                return m.group(1) if m else None
            depth -= 1
        i -= 1
    return None


def _kv_spans(text: str, out: list[SecretSpan]) -> None:
    for m in _KV_QUOTED.finditer(text):
        key = m.group("key")
        if not is_secret_name(key):
            continue
        val = m.group("val")
        if "f" in m.group("prefix").lower() and "{" in val:
            continue  # an f-string field: the value is computed
        if not _value_is_secret(val, bare=False):
            continue
        call = _enclosing_call(text, m.start("key"))
        if call is not None and REFERENCE_CALLS.search(call):
            continue
        out.append(SecretSpan("key_value", m.start("val"), m.end("val"), 0.8, key))
    for m in _KV_BARE.finditer(text):
        key = m.group("key")
        if m.group("after") or not is_secret_name(key):
            continue  # password = get_password(...), token = conn.extra[...]
        val = m.group("val")
        rest = text[
            m.end("val") : text.find("\n", m.end("val")) if "\n" in text[m.end("val") :] else len(text)
        ]
        if m.group("op") == ":" and (rest[:1] == ":" or re.match(r"[ \t]+[A-Za-z(]", rest)):
            continue  # a time, or a docstring's "token: Boolean value that ..." (prose after the value)
        if _PY_IDENT.match(val) and val.isupper() and rest.lstrip()[:1] in (",", ")"):
            continue  # a keyword argument passed a constant: admin_secret=GRAPHQL_KEY)
        if not _value_is_secret(val, bare=True):
            continue
        out.append(SecretSpan("key_value", m.start("val"), m.end("val"), 0.7, key))


def find_secrets(text: str, *, min_confidence: float = 0.0) -> list[SecretSpan]:
    """Every secret in ``text``: non-overlapping spans sorted by start (overlaps are merged).

    :param min_confidence: drop spans below this confidence (the redactor keeps everything).
    """
    if not text:
        return []
    lowered = text.lower()
    spans: list[SecretSpan] = []
    for p in (*_TOKENS, *_STRUCTURAL):
        if not any(n in lowered for n in p.needles):
            continue
        for m in p.regex.finditer(text):
            if p.validate is not None and not p.validate(m, text):
                continue
            if p.group is None:
                start, end = m.span()
            else:
                g = next(
                    g for g in ("val", "val2", "val3") if g in m.re.groupindex and m.group(g) is not None
                )
                start, end = m.span(g)
            if end > start:
                spans.append(SecretSpan(p.kind, start, end, p.confidence))
    if any(n in lowered for n in _KV_NEEDLES):
        _kv_spans(text, spans)
    if any(w in lowered for w in ("pass", "secret", "token", "key", "credential", "bearer")):
        for m in _HIGH_ENTROPY.finditer(text):
            if _high_entropy(m, text):
                spans.append(SecretSpan("high_entropy", m.start("val"), m.end("val"), 0.6))
    merged = _merge(spans)
    return [s for s in merged if s.confidence >= min_confidence] if min_confidence else merged


def _merge(spans: list[SecretSpan]) -> list[SecretSpan]:
    """Union of overlapping spans; the merged span keeps the most confident kind."""
    spans.sort(key=lambda s: (s.start, -(s.end - s.start)))
    out: list[SecretSpan] = []
    for s in spans:
        if out and s.start < out[-1].end:
            prev = out[-1]
            best = prev if prev.confidence >= s.confidence else s
            out[-1] = SecretSpan(
                best.kind,
                prev.start,
                max(prev.end, s.end),
                max(prev.confidence, s.confidence),
                best.name or prev.name,
            )
        else:
            out.append(s)
    return out


def redact(text: str, *, min_confidence: float = 0.0, replacement: str = REDACTED) -> str:
    """``text`` with every secret :func:`find_secrets` reports replaced (PEM blocks by ``[REDACTED PRIVATE KEY]``)."""
    spans = find_secrets(text, min_confidence=min_confidence)
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for s in spans:
        parts.append(text[pos : s.start])
        parts.append(REDACTED_KEY if s.kind == "private_key" else replacement)
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)


#: ``<qualifier>_secret`` names a secret value (``client_secret``, ``jwt_secret``); after another word
#: (``spark_secret``, ``k8s_secret``, ``db_secret``) "secret" may name a secret *object* of the platform
_VALUE_SECRET_QUALIFIERS = _KEY_QUALIFIERS | {
    "jwt",
    "oauth",
    "cookie",
    "csrf",
    "otp",
    "totp",
    "flask",
    "django",
}
#: a Kubernetes object name without digits (DNS-1123: lower case, '-' and '.')
_OBJECT_NAME = re.compile(r"^[a-z](?:[a-z.\-]{0,61}[a-z])?$")


def _names_a_secret(name: str, value: str) -> bool:
    """Whether a literal bound to a secret name names a secret instead of being one (AST checkers only;
    text redaction stays strict):

    * the value is a key name made of the name's own words: ``minio_secret_access_key="access_key"``
      (the key inside a mounted secret), ``AWS_SECRET_ACCESS_KEY="aws_secret_access_key"``;
    * the name is ``<something>_secret`` that is not a secret value's name and the value is a
      Kubernetes object name: ``spark_secret="varsome"``, ``db_secret="warehouse-creds"``.
    """
    parts = name_words(name)
    if _PY_IDENT.match(value):
        words = name_words(value)
        if words and set(words) <= set(parts):
            return True
    return (
        len(parts) >= 2
        and parts[-1] == "secret"
        and parts[-2] not in _VALUE_SECRET_QUALIFIERS
        and _OBJECT_NAME.match(value) is not None
    )


def literal_secret(name: str, value: str, *, call: str | None = None) -> SecretSpan | None:
    """Whether the string literal ``value`` bound to ``name`` is a hard-coded secret (for AST checkers).

    :param name: the assignment target, keyword or dict key (``DB_PASS``, ``password``, ``"api_key"``).
    :param value: the literal's text.
    :param call: the dotted name of the call when ``name`` is one of its keywords (``Secret``,
        ``k8s.V1SecretKeySelector``): keywords of :data:`REFERENCE_CALLS` name a secret object.
    :returns: a span over the whole ``value`` (``kind="key_value"``), or the strongest shaped secret
        inside ``value`` (a token, a URI password, a PEM block) whatever the name; ``None`` otherwise.
    """
    if call is not None and REFERENCE_CALLS.search(call):
        return None
    if is_secret_name(name) and _value_is_secret(value, bare=False) and not _names_a_secret(name, value):
        return SecretSpan("key_value", 0, len(value), 0.8, name)
    inner = [s for s in find_secrets(value) if s.kind != "key_value" and s.kind != "high_entropy"]
    if inner:
        best = max(inner, key=lambda s: s.confidence)
        return SecretSpan(best.kind, best.start, best.end, best.confidence, name)
    return None
