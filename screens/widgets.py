"""Widgets every page shares: the sidebar, the demo marker, form fields bound to answer paths, a
confirmation dialog and a diff view."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static, Switch
from textual.widgets.option_list import Option

from screens.pages import ICONS, PAGES, TITLES
from screens.starting import DemoBanner  # noqa: F401 - the pages' banner, defined with the first frame's

if TYPE_CHECKING:
    from textual.app import ComposeResult
    from textual.message import Message
    from textual.widget import Widget

Loc = tuple[Any, ...]


class Sidebar(OptionList):
    """The steps with their status; Enter on one jumps there."""

    def __init__(self, statuses: dict[str, str], current: str) -> None:
        super().__init__(*self._build(statuses, current), id="sidebar")
        self.current = current

    @staticmethod
    def _build(statuses: dict[str, str], current: str) -> list[Option]:
        out = []
        for name in PAGES:
            status = "current" if name == current and statuses.get(name, "") in ("", "current") else statuses.get(name, "")
            out.append(Option(f"{ICONS.get(status, '○')} {TITLES[name]}", id=name))
        return out

    def show(self, statuses: dict[str, str]) -> None:
        self.clear_options()
        self.add_options(self._build(statuses, self.current))
        self.highlighted = PAGES.index(self.current)


def demo_marker(scenario: dict[str, Any], root: str) -> Static:
    return DemoBanner(scenario)


@dataclass(frozen=True)
class FieldSpec:
    """One answer on a form: where it lives in the answers, and how its text becomes a value."""

    path: Loc
    label: str
    kind: str = "str"  # str, int, float, list, bool, select
    optional: bool = False
    placeholder: str = ""
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    password: bool = False
    help: str = ""
    key: str = ""  # tells apart two fields with one path (the same option of two backends)

    @property
    def id(self) -> str:
        return "f-" + "-".join(str(p) for p in (self.key, *self.path) if p).replace("_", "-")

    def to_value(self, raw: Any) -> Any:
        if self.kind in ("bool", "select"):
            return raw
        text = str(raw).strip()
        if self.kind == "list":
            return [part.strip() for part in text.split(",") if part.strip()]
        if not text:
            return None if self.optional else ""
        if self.kind == "int":
            try:
                return int(text)
            except ValueError:
                return text  # the model says what is wrong with it, in the same words as for a file
        if self.kind == "float":
            try:
                return float(text)
            except ValueError:
                return text
        return text

    def to_text(self, value: Any) -> str:
        if value is None:
            return ""
        if self.kind == "list" and isinstance(value, list):
            return ", ".join(str(v) for v in value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def widget(self, value: Any) -> Widget:
        if self.kind == "bool":
            return Switch(value=bool(value), id=self.id)
        if self.kind == "select":
            return Select(list(self.options), value=value, allow_blank=False, id=self.id, compact=True)
        return FieldInput(self.to_text(value), placeholder=self.placeholder, password=self.password, id=self.id,
                          compact=True)


class FieldInput(Input):
    """A form's text field whose page takes each typed edit while the key is handled, not when the Changed
    message has bubbled up through the field's row to the page a few queue hops later: by then Textual has
    drawn the new character alone, and the field's problem line came one frame (and one layout) after it.
    Together, a key costs one layout and one frame. The message still bubbles, marked as taken."""

    def post_message(self, message: Message) -> bool:
        if isinstance(message, Input.Changed) and self.has_focus:
            take = getattr(self.screen, "take_edit", None)
            if take is not None and take(message):
                message.taken = True  # type: ignore[attr-defined]
        return super().post_message(message)


class FieldRow(Vertical):
    """Label, control, and the problems of that one answer right under it."""

    def __init__(self, spec: FieldSpec, value: Any) -> None:
        super().__init__(classes="field")
        self.spec = spec
        self.value = value

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-line"):
            yield Label(self.spec.label, classes="field-label")
            yield self.spec.widget(self.value)
            if self.spec.kind == "bool":
                # a switch alone is a coloured block: its state in words beside it
                yield Label(switch_word(bool(self.value)), classes="switch-state")
        if self.spec.help:
            yield Static(self.spec.help, classes="field-help")
        yield Static("", classes="field-error", id=f"err-{self.spec.id}")

    def on_mount(self) -> None:
        if self.spec.kind == "bool":
            # watch the value, not the Changed message: a page may set it with Changed prevented
            self.watch(self.query_one(Switch), "value", self._show_state, init=True)

    def _show_state(self, value: bool) -> None:
        label = self.query_one(".switch-state", Label)
        label.update(switch_word(value))
        label.set_class(value, "-on")


def set_text(widget: Static, content: str | Text, hide_empty: bool = False, keep_height: bool = False) -> None:
    """Show `content` in a Static, redrawing it only when it differs from what it shows: every update
    of a Static costs the whole screen a layout (its height may change), and a page that redrew each of
    its labels on every key spent most of the key on layouts that changed nothing. With `hide_empty`
    the widget is hidden while it has nothing to say (a field's error line).

    With `keep_height` the widget keeps the tallest height it has been drawn with (and, once shown, its
    place): a widget whose height changes costs Textual a second layout of the whole screen one update
    later (its new virtual size asks for one), which was half of a key that turned a value valid or
    invalid (key → last frame p99 60 ms on the Network page with 16 000 leases). The form no longer
    moves under the cursor either; what is left is blank lines where a problem was."""
    kept = keep_height and (widget in _SHOWN or not hide_empty)
    if kept and widget.display:
        shown = widget.size.height
        floor = widget.styles.min_height
        if shown and (floor is None or shown > floor.value):
            widget.styles.min_height = shown  # its height now: this itself moves nothing
    if not _same(widget.content, content):
        widget.update(content)
    if keep_height and content:
        _SHOWN.add(widget)
    if hide_empty and widget.display != bool(content) and not (kept and widget.display):
        widget.display = bool(content)


_SHOWN: WeakSet[Static] = WeakSet()  # the keep_height widgets that have said something: they keep their place


def _same(shown: object, content: str | Text) -> bool:
    if isinstance(shown, Text) and isinstance(content, Text):
        # Text's == compares the characters and their spans only, not the style of the whole text
        return (shown.plain, shown.spans, shown.style, shown.justify, shown.overflow, shown.no_wrap, shown.end) == (
            content.plain, content.spans, content.style, content.justify, content.overflow, content.no_wrap,
            content.end)
    return type(shown) is type(content) and shown == content


def switch_word(value: bool) -> str:
    return "on" if value else "off"


class ConfirmModal(ModalScreen[bool]):
    """A clear yes/no before anything on the node is touched."""

    BINDINGS = [("escape", "dismiss(False)", "Cancel")]

    def __init__(self, question: str, yes: str) -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(self.question, id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(self.yes, variant="warning", id="confirm-yes", compact=True)
                yield Button("Cancel", id="confirm-no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")


def diff_text(diff: str) -> Text:
    """A unified diff with + and - lines coloured the way every diff tool does."""
    out = Text()
    for line in diff.splitlines():
        style = ""
        if line.startswith("+++") or line.startswith("---"):
            style = "bold"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        out.append(line + "\n", style=style)
    return out


def status_text(status: str, message: str, detail: str = "", indent: str = "") -> Text:
    icon = {"ok": "✓", "warn": "⚠", "failed": "✗", "skipped": "–", "pending": "·", "running": "…"}.get(status, "·")
    style = {"ok": "green", "warn": "yellow", "failed": "bold red", "skipped": "dim"}.get(status, "")
    text = Text(f"{indent}{icon} ", style=style)
    text.append(message)
    if detail:
        text.append("\n" + "\n".join(f"{indent}    {line}" for line in detail.splitlines()), style="dim")
    return text
