"""Help for the page on screen (F1, or ? outside a text field): what the page does, its keys as its
bindings and the app's define them, and for each field the answers key it writes, with its help."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.actions import parse
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from screens.pages import TITLES

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.dom import DOMNode

    from screens.widgets import FieldSpec

# What each page is for, in the operator's words (a page may say it itself with a HELP class attribute).
ABOUT: dict[str, str] = {
    "preflight": (
        "Checks that this node is ready, the way kubeadm's preflight does: root, binaries, kernel "
        "modules, sysctls, swap, ports. An error blocks Next until it is fixed (then r checks again) "
        "or ignored by name with i — the same as `--ignore-preflight-errors NAME`. Enter on a check "
        "shows its whole detail. Nothing on the node changes before you confirm on Review. c (Check this "
        "node) runs `flannel-wizard check` on the answers as they are: every step's checks, the mesh to "
        "the other nodes among them, problems first; it changes nothing, and Esc comes back here."
    ),
    "etcd": (
        "Where flannel keeps its network config: the endpoints, the prefix (flanneld reads "
        "PREFIX/config and leases subnets under PREFIX/subnets/), TLS and auth. Test connection asks "
        "etcd for its version, a config already there (with a diff against what will be written) and "
        "the leases. on_existing says what to do when PREFIX/config already holds another config."
    ),
    "network": (
        "flannel's address plan: the pod Network, the size of the subnet each node leases, the "
        "service CIDR, and the backend with only its own options. Checked as you type against "
        "flannel's own rules and this node's addresses and routes: overlaps, how many nodes fit, "
        "the MTU the backend leaves for pods."
    ),
    "flanneld": (
        "flanneld's options: the interface other nodes reach this one on, IP masquerading, and the "
        "environment file its service reads — the lines the wizard will write are shown as you type. "
        "After the restart the wizard waits for the subnet file flanneld writes once it holds a lease."
    ),
    "docker": (
        "docker0 moved onto the subnet flanneld leases: the bridge as it is beside what it becomes, "
        "the options file exactly as mk-docker-opts.sh writes it, and daemon.json. Each setting goes "
        "through the one channel docker.service gives dockerd: flags from the options file where it "
        "passes them (then not in daemon.json too: dockerd refuses both), else daemon.json."
    ),
    "cgroup": (
        "One cgroup driver for kubelet and the container runtime: the drivers side by side, each read "
        "where its service reads it (kubelet: its flags, then its --config file), kubelet's own message "
        "when they differ under docker (the wizard's own finding under containerd or CRI-O), and the "
        "choice — auto follows PID 1 (systemd when PID 1 is systemd)."
    ),
    "review": (
        "Every change the plan holds, step by step, each with its diff. Nothing has been touched "
        "yet. Next asks you to confirm, then Apply runs; a plan that would stop part-way says where, "
        "and the page to fix it on."
    ),
    "apply": (
        "The run, live: one line per step, a sub-line per change, every event in the log. Every change "
        "is journaled first. On a failure: what failed, what to do, and Retry, Roll back (undo this "
        "run's changes from the journal) or Quit."
    ),
    "smoke": (
        "The smoke test: nginx pods behind a NodePort service, endpoints, kube-proxy's rules and real "
        "traffic, sub-step by sub-step, beside the service's path through kube-proxy — the same tree "
        "`flannel-wizard explain-service` prints."
    ),
    "finish": (
        "Save the answers to a file that replays unattended on the next node (secrets are named, never "
        "written), and the next steps: the command to run there, how to check, how to undo."
    ),
}

# Keys that act through a widget rather than a binding of the page: true on every page.
EVERYWHERE: tuple[tuple[str, str], ...] = (
    ("tab, shift+tab", "move between fields and buttons"),
    ("enter", "in a text field: the next field (Next on the last one); on a button: press it"),
    ("space, enter", "turn a switch on or off"),
    ("↑ ↓ enter", "in the sidebar: jump to that page"),
)

# Keys that act through a page's widgets rather than its bindings.
PAGE_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "review": (("enter", "on a step or a change: show or hide its changes and diff"),),
    "apply": (("enter", "on a button (Retry, Roll back, Quit): press it"),),
}

# Words for the app's own actions, where Textual's short description says little.
ACTION_WORDS: dict[str, str] = {
    "command_palette": "command palette: jump to a page, save, theme",
    "help": "this help",
    "quit": "quit the wizard (while Apply runs: stop after the change in flight)",
}
# Textual's own screen keys, said once in EVERYWHERE's words instead
TEXTUAL_KEYS = frozenset({"app.focus_next", "app.focus_previous", "screen.copy_text"})

def answers_key(spec: FieldSpec) -> str:
    return ".".join(str(p) for p in spec.path)


def model_field(spec: FieldSpec) -> Any:
    """The answers model's field a form field writes (None when it writes no key of its own)."""
    from pydantic import BaseModel

    from wizard.answers import BACKEND_MODELS, Answers, Network

    model: Any = Answers
    info = None
    for part in spec.path:
        if model is Network and part == "backend":
            # one model per backend: an option's own (spec.key), or any for what they share (type)
            model, info = BACKEND_MODELS.get(spec.key or "vxlan"), None
            if model is None:
                return None
            continue
        info = getattr(model, "model_fields", {}).get(part)
        if info is None:
            return None
        annotation = info.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return info


def _words(text: str) -> set[str]:
    text = text.replace("…", "...")
    return {w.strip(".,;:()'\"").lower() for w in text.split() if len(w) > 2}


def field_help(spec: FieldSpec) -> list[str]:
    """What the help says about a field: what its key means (the answers model's description, the
    words `flannel-wizard schema` shows), and the page's own hint when it says something more."""
    described = getattr(model_field(spec), "description", None) or ""
    out = [described] if described else []
    hint = spec.help
    if hint and not (described and len(_words(hint) - _words(described)) <= len(_words(hint)) // 3):
        out.append(hint)
    return out


def is_key(spec: FieldSpec) -> bool:
    return spec.password or model_field(spec) is not None


def shown_here(page: DOMNode, spec: FieldSpec) -> bool:
    """A field the page hides (another backend's options) is left out; a collapsed one is not."""
    found = page.query(f"#{spec.id}")
    if not found:
        return not spec.key
    node: DOMNode | None = found.first()
    while node is not None and node is not page:
        inline = node.styles.inline
        if inline.has_rule("display") and inline.display == "none":
            return False
        node = node.parent
    return True


def _keys(node: DOMNode, extra_words: dict[str, str]) -> list[tuple[str, str]]:
    """(keys, what they do) for a node's own bindings, one row per action, as the footer shows them."""
    app = node.app
    rows: dict[str, tuple[list[str], str]] = {}
    for bindings in node._bindings.key_to_bindings.values():
        for binding in bindings:
            if binding.system or binding.action in TEXTUAL_KEYS or not binding.description:
                continue
            _namespace, name, params = parse(binding.action)
            if node.check_action(name, params) is False:
                continue  # not on offer here (the footer hides it too)
            words = extra_words.get(name) or binding.description
            if name == "next" and hasattr(node, "next_label"):
                words = node.next_label()  # what Next is on this page (Finish: Quit)
            keys, words = rows.setdefault(binding.action, ([], words))
            display = app.get_key_display(binding)
            if display not in keys:
                keys.append(display)
    return [(", ".join(keys), words) for keys, words in rows.values()]


def page_keys(page: DOMNode) -> list[tuple[str, str]]:
    return _keys(page, {})


def app_keys(page: DOMNode) -> list[tuple[str, str]]:
    return _keys(page.app, ACTION_WORDS)


def about(page: Any) -> str:
    name = str(getattr(page, "NAME", ""))
    return str(getattr(page, "HELP", "") or ABOUT.get(name, ""))


def key_rows(page: Any) -> list[tuple[str, str]]:
    return [*page_keys(page), *PAGE_KEYS.get(str(getattr(page, "NAME", "")), ()), *app_keys(page), *EVERYWHERE]


def field_rows(page: Any) -> list[tuple[FieldSpec, str, list[str]]]:
    """(field, where its answer lives, what it means) for each field the page shows now."""
    rows = []
    for spec in getattr(page, "FIELDS", ()):
        if not shown_here(page, spec):
            continue
        if spec.password:
            where = "not saved: named by etcd.password_env or etcd.password_file"
        elif is_key(spec):
            where = answers_key(spec)
        else:
            where = "a switch of this page, not an answers key"
        lines = field_help(spec)
        if spec.optional and spec.placeholder:
            lines.append(f"empty: {spec.placeholder}")
        rows.append((spec, where, lines))
    return rows


def help_renderables(page: Any) -> list[Any]:
    """The help as Rich renderables: grids, so long lines wrap inside their column."""
    from rich.padding import Padding
    from rich.table import Table

    name = str(getattr(page, "NAME", ""))
    out: list[Any] = [
        Text(getattr(page, "HEADING", "") or TITLES.get(name, name), style="bold"),
        Text(about(page) + "\n"),
        Text("Keys", style="bold"),
    ]
    keys = Table.grid(padding=(0, 2))
    keys.add_column(style="bold cyan", no_wrap=True)
    keys.add_column(ratio=1)
    for key, words in key_rows(page):
        keys.add_row(key, words)
    out += [keys, Text("")]
    rows = field_rows(page)
    if rows:
        out.append(Text("Fields, and where each answer lives in the answers file", style="bold"))
        for spec, where, lines in rows:
            title = Text(spec.label, style="bold")
            title.append("  ")
            title.append(where, style="cyan" if is_key(spec) and not spec.password else "dim")
            out.append(title)
            if lines:
                out.append(Padding(Text("\n".join(lines)), (0, 0, 0, 4)))
    return out


def help_plain(page: Any) -> str:
    """The help's words, for tests and for anyone reading it without a screen."""
    lines = [str(getattr(page, "HEADING", "")), about(page)]
    lines += [f"{k}  {w}" for k, w in key_rows(page)]
    for spec, where, help_lines in field_rows(page):
        lines.append(f"{spec.label}  {where}")
        lines += [f"    {line}" for line in help_lines]
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """The help for one page; Esc, q, ? or F1 close it."""

    BINDINGS: ClassVar[list[Binding]] = [  # type: ignore[assignment]
        Binding("escape,q,question_mark,f1", "close", "Close help"),
    ]

    def __init__(self, page: Any) -> None:
        super().__init__()
        self.page = page

    def compose(self) -> ComposeResult:
        name = str(getattr(self.page, "NAME", ""))
        with Vertical(id="help"):
            yield Static(f"Help — {TITLES.get(name, name)}", id="help-title")
            with VerticalScroll(id="help-body"):
                for n, part in enumerate(help_renderables(self.page)):
                    yield Static(part, classes="help-part", id=f"help-{n}")
            yield Static("Esc, q, ? or F1 closes this help · ↑ ↓ PgUp PgDn scroll", id="help-keys")

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def action_close(self) -> None:
        self.dismiss()
