"""A git source of ``watch --git``: one clone per URL under ``<home>/git/<hash of URL>/``.

Each fetch takes only the tip of the watched ref (``--depth 1``): the tip is what is applied,
as Argo CD and Flux do; commits pushed between two fetches are not applied one by one.

Credentials never go into argv, the URL, the clone's config or a log: a token (from
``AGENTFORM_GIT_TOKEN`` or a credentials file) reaches git through ``GIT_ASKPASS``, a script
under ``<home>/git/`` that prints an environment variable set only for the git child; the
user's credential helpers are switched off for that call so none stores it; the token is
registered with the redactor, so git's own messages cannot carry it either.

Bounds: one git command runs at most ``timeout`` seconds (its whole process group is killed
after), a clone holds at most ``max_bytes`` of objects, and ``path`` must stay inside the
checkout, symlinks resolved.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agentform.engine.errors import AgentformError, UsageError
from agentform.engine.redaction import redact_text, register

TOKEN_ENV = "AGENTFORM_GIT_TOKEN"
USERNAME_ENV = "AGENTFORM_GIT_USERNAME"
DEFAULT_USERNAME = "x-access-token"     # what GitHub expects with a token; GitLab accepts any
GIT_TIMEOUT = 300.0                     # seconds for one clone or fetch
MAX_BYTES = 512 * 1024 * 1024           # objects a clone may hold
_CREDENTIALS_FILE_MAX = 4096
_SCHEMES = ("https", "http", "ssh", "git", "file")
_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/@+-]{1,255}$")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)")
_ASKPASS = """#!/bin/sh
# Written by agentform watch: answers git's credential prompts from variables set only for git.
case "$1" in
  Username*) printf '%s\\n' "$AGENTFORM_GIT_ASKPASS_USER" ;;
  *) printf '%s\\n' "$AGENTFORM_GIT_ASKPASS_TOKEN" ;;
esac
"""


class GitError(AgentformError):
    """A git command failed (fetch, checkout), ran out of time, or the clone is too large."""


@dataclass(frozen=True)
class GitCredentials:
    username: str
    token: str = field(repr=False)


def load_credentials(file: str | Path | None = None, environ: dict[str, str] | None = None) -> GitCredentials | None:
    """The token for git over HTTP: the file's first line (``TOKEN`` or ``USERNAME:TOKEN``) when a
    file is named, else ``AGENTFORM_GIT_TOKEN`` (user ``AGENTFORM_GIT_USERNAME``); None when neither."""
    environ = os.environ if environ is None else environ
    username = environ.get(USERNAME_ENV) or DEFAULT_USERNAME
    if file is not None:
        path = Path(file)
        try:
            with path.open("rb") as handle:
                raw = handle.read(_CREDENTIALS_FILE_MAX + 1)
        except OSError as exc:
            raise UsageError(f"--git-credentials-file {path}: cannot read it ({exc.strerror})") from None
        if len(raw) > _CREDENTIALS_FILE_MAX:
            raise UsageError(f"--git-credentials-file {path}: larger than {_CREDENTIALS_FILE_MAX} bytes; "
                             "it holds one line, TOKEN or USERNAME:TOKEN")
        line = raw.decode("utf-8", "replace").strip().splitlines()[0] if raw.strip() else ""
        if not line:
            raise UsageError(f"--git-credentials-file {path} is empty; write TOKEN or USERNAME:TOKEN in it")
        if ":" in line:
            username, line = line.split(":", 1)
        token = line
    else:
        token = environ.get(TOKEN_ENV, "")
        if not token:
            return None
    register(token)
    return GitCredentials(username, token)


def check_url(url: str) -> str:
    """``url`` as git gets it (a local path made absolute); UsageError for a URL git should not
    be handed: a password in it, a transport helper (``ext::``), an unknown scheme."""
    if not url or url.startswith("-") or any(ord(c) < 0x20 for c in url):
        raise UsageError(f"--git {url!r}: not a git URL")
    if "::" in url.split("/", 1)[0]:
        raise UsageError(f"--git {url!r}: transport helpers (<transport>::<address>) are not allowed; "
                         f"use one of {', '.join(_SCHEMES)}")
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES:
            raise UsageError(f"--git {url!r}: scheme {parts.scheme!r} is not one of {', '.join(_SCHEMES)}")
        if parts.password is not None:
            raise UsageError(f"--git: the URL carries a password; remove it and put the token in "
                             f"{TOKEN_ENV} or a --git-credentials-file")
        return url.rstrip("/")
    if _SCP_LIKE.match(url):
        return url
    path = Path(url).expanduser()
    if not path.exists():
        raise UsageError(f"--git {url!r}: neither a URL ({', '.join(_SCHEMES)}, user@host:path) nor a "
                         "folder that exists")
    return str(path.resolve())


def check_ref(ref: str) -> str:
    if not _REF.match(ref):
        raise UsageError(f"--ref {ref!r}: not a branch, tag or commit name (letters, digits, ._/@+-; "
                         "no leading '-', no '..')")
    return ref


def display_url(url: str) -> str:
    """``url`` without any user name (what is recorded and printed)."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return parts._replace(netloc=host).geturl()


def default_app(url: str, path: str | None) -> str:
    """The app of a git source by default: ``path``'s last folder, else the repository's name."""
    if path and Path(path).name:
        return Path(path).name
    name = re.split(r"[/:]", url.rstrip("/"))[-1]
    return name.removesuffix(".git") or "default"


@dataclass
class GitSource:
    """A repository URL, the ref watched, the folder of manifests in it, and the clone's home."""

    url: str
    ref: str
    home: Path
    path: str | None = None
    credentials: GitCredentials | None = None
    timeout: float = GIT_TIMEOUT
    max_bytes: int = MAX_BYTES

    def __post_init__(self) -> None:
        self.url = check_url(self.url)
        self.ref = check_ref(self.ref)
        if self.path is not None and (Path(self.path).is_absolute() or ".." in Path(self.path).parts):
            raise UsageError(f"--path {self.path!r}: a folder inside the repository (relative, no '..')")

    @property
    def checkout(self) -> Path:
        digest = hashlib.sha256(display_url(self.url).encode()).hexdigest()[:16]
        return Path(self.home).resolve() / "git" / digest

    def folder(self) -> Path:
        """The manifests' folder in the checkout; GitError when the commit lacks it or makes it
        point outside the checkout."""
        root = self.checkout.resolve()
        folder = (root / (self.path or ".")).resolve()
        if folder != root and root not in folder.parents:
            raise GitError(f"--path {self.path}: resolves outside the repository (a symlink?)")
        if not folder.is_dir():
            raise GitError(f"--path {self.path}: no such folder at this commit")
        return folder

    def fetch(self) -> str:
        """Fetch the tip of ``ref`` (cloning first when needed); its commit id."""
        root = self.checkout
        if not (root / ".git").is_dir():
            root.mkdir(parents=True, exist_ok=True)
            self._git("init", "--quiet")
        self._git("fetch", "--quiet", "--no-tags", "--depth", "1", "--", self.url, self.ref, network=True)
        commit = self._git("rev-parse", "--verify", "FETCH_HEAD^{commit}").strip()
        self._check_size()
        return commit

    def check_out(self, commit: str) -> Path:
        """Make the work tree exactly ``commit`` (stray files removed); the manifests' folder."""
        self._git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--force", "--detach", commit)
        self._git("clean", "-ffdxq")
        return self.folder()

    def _check_size(self) -> None:
        out = self._git("count-objects", "-v")
        kib = sum(int(v) for k, v in (line.split(": ", 1) for line in out.splitlines() if ": " in line)
                  if k in ("size", "size-pack"))
        if kib * 1024 > self.max_bytes:
            raise GitError(f"the clone of {display_url(self.url)} holds {_size(kib * 1024)}, more than the "
                           f"{_size(self.max_bytes)} allowed")

    def _env(self, network: bool) -> dict[str, str]:
        # Variables that would point git elsewhere (GIT_DIR, GIT_WORK_TREE...) are the caller's, not ours.
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != TOKEN_ENV}
        env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0")
        if network and self.credentials is not None:
            env.update(GIT_ASKPASS=str(_askpass(self.checkout.parent)),
                       AGENTFORM_GIT_ASKPASS_USER=self.credentials.username,
                       AGENTFORM_GIT_ASKPASS_TOKEN=self.credentials.token)
        return env

    def _git(self, *args: str, network: bool = False) -> str:
        argv = ["git", "-C", str(self.checkout)]
        if network and self.credentials is not None:
            argv += ["-c", "credential.helper="]       # no helper stores the token
        argv += list(args)
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=self._env(network), start_new_session=True)
        except OSError as exc:
            raise GitError(f"cannot run git ({exc.strerror}); install git") from None
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)   # git's helpers (remote-https, ssh) too
            proc.communicate()
            raise GitError(f"git {args[0]} of {display_url(self.url)} took more than {self.timeout:g}s") from None
        if proc.returncode != 0:
            message = err.decode("utf-8", "replace").strip()[-2000:] or f"exit status {proc.returncode}"
            raise GitError(f"git {args[0]} of {display_url(self.url)} (ref {self.ref}) failed: "
                           f"{redact_text(message)}")
        return out.decode("utf-8", "replace")


def _askpass(folder: Path) -> Path:
    script = folder / "askpass.sh"
    if not script.is_file() or script.read_text() != _ASKPASS:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".askpass.{os.getpid()}"
        tmp.write_text(_ASKPASS)
        tmp.chmod(0o700)
        tmp.replace(script)
    return script


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"
