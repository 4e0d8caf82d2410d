"""Command line: parses arguments, calls the engine and renders its typed results; each subcommand
imports what it needs when it runs."""

from __future__ import annotations

import argparse
import sys

from wizard.errors import AnswersInvalidError, InputError, WizardError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (2.5 ms of every `--help`)
if TYPE_CHECKING:
    from collections.abc import Sequence

    from wizard.answers import Answers
    from wizard.events import RunResult
    from wizard.proxypath import ServicePort
    from wizard.session import Session

EXAMPLES = """\
examples:
  flannel-wizard                      the interactive wizard on this node
  flannel-wizard --answers answers.yaml
  flannel-wizard demo                 the walkthrough on a simulated node (no root, changes nothing)
  flannel-wizard demo --scenario cgroup-mismatch --autoplay
  flannel-wizard validate answers.yaml
  render-answers | flannel-wizard validate -    (- : the answers from standard input)
  flannel-wizard plan answers.yaml --root /tmp/staging
  flannel-wizard apply answers.yaml --yes
  flannel-wizard apply answers.yaml --only docker,cgroup --yes
  flannel-wizard check answers.yaml   is this node as the answers say, and does the overlay reach every node?
  flannel-wizard check answers.yaml --only mesh --output json
  flannel-wizard undo

exit codes: 0 done, 1 a step failed, 2 bad input or usage, 3 preflight failed, 130 interrupted
  (check: 0 healthy, 1 a problem found, 2 bad input, 3 preflight failed)
"""


EXPLAIN_EXAMPLES = """\
examples:
  flannel-wizard explain-service example-service            in namespace default, this node's rules
  flannel-wizard explain-service default/example-service    NAMESPACE/NAME, as kubectl prints it
  flannel-wizard explain-service --list                     the services kube-proxy has rules for
  flannel-wizard explain-service web -n shop --from node2.rules
  ssh node2 iptables-save | flannel-wizard explain-service web -n shop --from -
  ssh node2 nft list ruleset | flannel-wizard explain-service web -n shop --from -      nftables mode
  flannel-wizard explain-service kube-system/kube-dns --kubeconfig admin.conf            IPVS: names from the API
  flannel-wizard explain-service 10.96.0.10:53/udp --from ipvs.txt --from node2.rules   IPVS: by address

exit codes: 0 a path to a pod (--list: services listed), 1 the service has no endpoints, no rules for it,
or no kube-proxy rules at all (--list: no services), 2 not whole output of its tool (cut off, or not
iptables-save, nft or ipvsadm output at all) or bad usage
"""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message} — see `{self.prog} --help`\n")
        sys.exit(2)


def _steps(value: str) -> list[str]:
    import difflib

    from wizard.steps import ORDER

    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in ORDER]
    if unknown or not names:
        close = difflib.get_close_matches(unknown[0], ORDER, n=1) if unknown else []
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise argparse.ArgumentTypeError(f"unknown step {', '.join(unknown) or '(none)'}{hint}; steps are {', '.join(ORDER)}")
    return names


def _names(value: str) -> list[str]:
    return [n.strip().lower() for n in value.split(",") if n.strip()]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, the arguments of only the subcommands it names (each one's options cost
    time to build, and `--help` or one command needs none of the others'), every subcommand still listed."""

    def want(command: str) -> bool:
        return argv is None or command in argv

    parser = Parser(
        prog="flannel-wizard",
        description="Set up a Kubernetes node's flannel pod network — etcd config, flanneld, docker bridge, "
        "cgroup driver — in an interactive wizard (no COMMAND), or unattended from an answers file.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="flannel-wizard 0.1.0")
    parser.add_argument("--answers", metavar="FILE", help="open the wizard with every field prefilled from FILE")
    parser.add_argument("--root", dest="ui_root", default="/", metavar="DIR",
                        help="the wizard: prefix every file path with DIR")
    parser.add_argument("--state-dir", dest="ui_state_dir", default=None, metavar="DIR", help="the wizard: journal and backups")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def node_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--root", default="/", metavar="DIR", help="prefix every file path with DIR (staging, chroots)")
        p.add_argument("--state-dir", default=None, metavar="DIR",
                       help="journal and backups (default /var/lib/flannel-wizard under --root)")
        p.add_argument("--output", choices=("text", "json"), default="text", help="one line or one JSON object per event")

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", metavar="FILE", help="answers file (see config.example.yaml); - reads it from standard input")
        p.add_argument("--only", type=_steps, metavar="STEP,..",
                       help="run only these steps (preflight, network, etcd, flanneld, docker, cgroup, mesh, smoke)")
        p.add_argument("--skip", type=_steps, metavar="STEP,..", help="run all steps but these")
        p.add_argument("--ignore-preflight-errors", type=_names, default=[], metavar="NAME,..|all",
                       help="turn these preflight errors into warnings, e.g. Swap,FileExisting-kubelet")
        p.add_argument("--verbose", "-v", action="store_true",
                       help="text output: also every entry a line sums up (each lease under PREFIX/subnets/)")
        node_options(p)

    p = sub.add_parser("apply", help="configure this node from an answers file")
    if want("apply"):
        run_options(p)
        p.add_argument("--dry-run", action="store_true", help="show every change and touch nothing")
        p.add_argument("--yes", "-y", action="store_true",
                       help="do not ask for confirmation (needed without a terminal, and with FILE -)")
    p = sub.add_parser("plan", help="show what apply would change (= apply --dry-run)")
    if want("plan"):
        run_options(p)
    p = sub.add_parser(
        "check", help="check this node against an answers file and prove the overlay to every node; changes nothing",
        description="Run every step's inspect and verify against the node as it is: what is not as the answers say "
        "(each with the apply that fixes it), and what does not work — including the mesh step, which probes every "
        "other node that holds a lease. Changes nothing: no journal entry, no restart, no test objects.")
    if want("check"):
        run_options(p)
    p = sub.add_parser("validate", help="check an answers file; report every problem with its line")
    p.add_argument("file", metavar="FILE", help="answers file; - reads it from standard input")
    p = sub.add_parser("schema", help="print the JSON Schema of the answers file, for editors")
    p.add_argument("--events", action="store_true", help="the schema of `--output json` (events and the result) instead")
    p = sub.add_parser("undo", help="reverse every change the wizard recorded on this node, newest first")
    if want("undo"):
        node_options(p)
    p = sub.add_parser(
        "explain-service", help="trace a service through kube-proxy's rules (iptables, nftables, IPVS) to its pods",
        description="Trace a service through kube-proxy's rules to its pods, in the mode kube-proxy runs: iptables "
        "(KUBE-SERVICES -> KUBE-SVC -> KUBE-SEP (probability) -> DNAT), nftables (services -> service-ips / "
        "service-nodeports -> service-… -> numgen -> endpoint-… -> dnat) or IPVS (virtual server -> real servers by "
        "weight), for IPv4, IPv6 and dual-stack services, with session affinity. Reads this node's live rules (as "
        "root) or saved dumps; needs no cluster.",
        epilog=EXPLAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    if want("explain-service"):
        _explain_options(p)
    p = sub.add_parser("demo", help="the wizard on a simulated node: no root, nothing on this machine changes")
    if want("demo"):
        _demo_options(p)
    return parser


def _explain_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="[NAMESPACE/]NAME",
                   help="the service: NAME (in -n's namespace) or NAMESPACE/NAME, e.g. default/example-service; "
                   "in IPVS mode, whose rules carry no names, also its address IP:PORT[/PROTOCOL], e.g. 10.96.0.10:53/udp")
    p.add_argument("-n", "--namespace", default=None,
                   help="its namespace (default: default); with --list, list only this namespace")
    p.add_argument("--list", action="store_true",
                   help="list the services the rules hold (cluster IP:port, node port, endpoints) instead of tracing one")
    p.add_argument("--from", dest="source", metavar="FILE", action="append",
                   help="a saved dump (from this or another node) instead of the live rules: iptables-save, "
                   "ip6tables-save, `nft list ruleset` or `ipvsadm -S -n`/`-Ln` output, told apart by their look; "
                   "give it again for each (IPVS: ipvsadm's and iptables-save's); - reads standard input")
    p.add_argument("--mode", choices=("iptables", "nftables", "ipvs"), default=None,
                   help="kube-proxy's mode (default: kube-proxy's ConfigMap says, with --kubeconfig; else the rules "
                   "present do)")
    p.add_argument("--answers", metavar="FILE",
                   help="answers file: name each pod's node subnet from the leases in etcd (etcd not answering: "
                   "a warning, and the trace without them)")
    p.add_argument("--kubeconfig", metavar="FILE",
                   help="also name each endpoint's pod and node, asking the API server; and read kube-proxy's mode from "
                   "its ConfigMap, and (IPVS mode) the service's addresses")


def _demo_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--answers", metavar="FILE", help="prefill from FILE instead of the defaults")
    p.add_argument("--scenario", default="fresh-node", metavar="NAME",
                   help=f"machine profile: {_scenario_list()}")
    p.add_argument("--autoplay", action="store_true", help="fill each screen and move on by itself; any key takes over")
    p.add_argument("--speed", type=_speed, default=1.0, metavar="X", help="simulated delays and autoplay pace divided by X")
    p.add_argument("--keep", action="store_true",
                   help="keep the demo's temporary files when it ends (removed otherwise) and print where they are")
    p.add_argument("--web", action="store_true",
                   help="serve the demo to browsers (textual-serve, the `web` extra): each tab gets its own demo")
    p.add_argument("--host", default=None, metavar="H",
                   help="with --web: the address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=None, metavar="P", help="with --web: the port (default 8000)")
    p.add_argument("--served", action="store_true", help=argparse.SUPPRESS)  # one browser session of --web


def _port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"'{value}' is not a port; give 1 to 65535")
    return int(value)


def _speed(value: str) -> float:
    try:
        speed = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a number") from None
    if not 0.1 <= speed <= 100:
        raise argparse.ArgumentTypeError(f"{value} is out of range; give 0.1 to 100")
    return speed


def _scenario_list() -> str:
    """The demo's scenarios as files name them (a glob, no YAML read), so a new one is listed by itself."""
    from wizard import scenarios

    return ", ".join(f"{n} (default)" if n == scenarios.DEFAULT else n
                     for n in sorted(scenarios.names(), key=lambda n: (n != scenarios.DEFAULT, n)))


def run() -> None:
    """The `flannel-wizard` command: main(), with Ctrl+C outside it (while Python starts the command or
    winds down: gRPC's threads, the journal's last fsync) also ending in exit 130 and one line, never
    a traceback or a bare -2."""
    import os
    import signal

    def interrupted(signum: int, frame: object) -> None:
        os.write(2, b"interrupted\n")
        os._exit(130)

    signal.signal(signal.SIGINT, interrupted)
    code = main(install_handler=True)
    signal.signal(signal.SIGINT, interrupted)
    # everything is written and closed by now: skip the interpreter's teardown (gRPC's threads, module
    # finalisers), where a Ctrl+C used to end as a bare -2, and which cost 0.1-0.2 s of every run
    import contextlib

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that went away (| head): nothing to tell it
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None, install_handler: bool = False) -> int:
    if install_handler:
        import signal

        signal.signal(signal.SIGINT, signal.default_int_handler)  # inside main: KeyboardInterrupt, caught below
    try:
        parser = build_parser(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        if args.command is None:
            return interactive(args)
        if args.command == "demo":
            return demo(args)
        if args.command == "explain-service":
            return explain_service(args)
        if args.command == "validate":
            return validate(args)
        if args.command == "schema":
            return schema(args.events)
        if args.command == "undo":
            return undo(args)
        if args.command == "check":
            return check(args)
        return apply(args, dry_run=args.command == "plan" or args.dry_run)
    except AnswersInvalidError as exc:
        sys.stderr.write(f"{exc}\n")  # already FILE:LINE:COL lines
        return exc.exit_code
    except WizardError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


def _load(path: str) -> Answers:
    """The answers from `path`, or from standard input for `-` (named <stdin> in messages)."""
    from wizard import answers

    if path == answers.STDIN and sys.stdin is not None and sys.stdin.isatty():
        sys.stderr.write("reading the answers from standard input: paste them, then press Ctrl+D\n")
    return answers.load(path)


def validate(args: argparse.Namespace) -> int:
    from wizard import answers as model
    from wizard.answers import source_name

    if args.file == model.STDIN and sys.stdin is not None and sys.stdin.isatty():
        sys.stderr.write("reading the answers from standard input: paste them, then press Ctrl+D\n")
    text = model.read(args.file)
    name = source_name(args.file)
    loaded = model.parse(text, name)
    problem = _iface_problem(loaded)
    if problem:
        from wizard import yamlpos

        pos = yamlpos.load(text).where(("flanneld", "iface"))
        raise model.AnswersInvalid(name, [model.Problem(pos.line, pos.col, problem, ("flanneld", "iface"))])
    print(f"{name}: valid")
    return 0


def _iface_problem(answers: Answers) -> str:
    """flanneld.iface checked against this machine's interfaces when this machine is the node the file is
    for. validate runs anywhere (a laptop, CI); it takes this machine for the node when flanneld is
    installed here: its binary on PATH or its unit in a systemd unit directory. The interfaces are the
    names in /sys/class/net (a directory listing: no netlink library to import, so validate stays fast);
    an address given as iface is left to `plan`, which reads the node's addresses."""
    import ipaddress
    import os
    import shutil

    from wizard.units import UNIT_DIRS, unit_name

    iface = answers.flanneld.iface
    if not iface:
        return ""
    try:
        ipaddress.ip_address(iface)
        return ""
    except ValueError:
        pass
    unit = unit_name(answers.flanneld.service)
    if shutil.which("flanneld") is None and not any(os.path.exists(f"{d}/{unit}") for d in UNIT_DIRS):
        return ""
    try:
        names = sorted(os.listdir("/sys/class/net"))
    except OSError:
        return ""
    if iface in names:
        return ""
    here = ", ".join(n for n in names if n != "lo") or "none but lo"
    return (f"flanneld.iface: {iface} is not an interface of this node (flanneld is installed here, so validate "
            f"checks; its interfaces: {here}) — set it to the interface other nodes reach this one on, or null for "
            "the default route's; a file for another node is checked when validated there")


def schema(events: bool = False) -> int:
    import json

    if events:
        from wizard.events import schema as events_schema

        print(json.dumps(events_schema(), indent=2))
        return 0
    from wizard.answers import Answers

    print(json.dumps(Answers.model_json_schema(), indent=2))
    return 0


def _state_dir(args: argparse.Namespace) -> str:
    from wizard.journal import DEFAULT_STATE_DIR

    return args.state_dir or DEFAULT_STATE_DIR


def apply(args: argparse.Namespace, dry_run: bool) -> int:
    from wizard import steps
    from wizard.journal import Journal
    from wizard.node import Node
    from wizard.output import Printer
    from wizard.runner import Runner
    from wizard.steps import Context

    confirm = not dry_run and not getattr(args, "yes", False)
    if confirm and args.file == "-":
        raise InputError("apply - reads the answers from standard input, so it cannot ask there for confirmation",
                         "review with `flannel-wizard plan -`, then run `flannel-wizard apply - --yes`")
    answers = _load(args.file)
    names = steps.select(args.only, args.skip)
    if not names:
        raise InputError("--only and --skip leave no step to run", f"steps are {', '.join(steps.ORDER)}")
    if confirm and not sys.stdin.isatty():
        raise InputError("apply changes this node and there is no terminal to ask for confirmation",
                         "review with `flannel-wizard plan FILE`, then pass --yes")
    node = Node(args.root)
    printer = Printer(args.output, verbose=args.verbose)
    ignore = frozenset(args.ignore_preflight_errors)
    # a plan reads the journal too (restarts an interrupted run left owed); only apply writes it
    journal = Journal(node.files, _state_dir(args), node.identity())
    try:
        if confirm:
            planned = Runner(Context(answers, node, dry_run=True, emit=printer, ignore_preflight=ignore), journal,
                             names).plan()
            if planned.planned == 0:
                print("Nothing to change; running the checks.")
            reply = input(f"Apply {planned.planned} change(s) to this node? [y/N] ").strip().lower()
            if reply not in ("y", "yes"):
                print("Nothing was changed.")
                return 0
        ctx = Context(answers, node, dry_run=dry_run, emit=printer, ignore_preflight=ignore)
        result = Runner(ctx, journal, names).run()
        _print_result(args, result)
        return result.code
    finally:
        node.close()


def _print_result(args: argparse.Namespace, result: RunResult) -> None:
    """`--output json`'s closing line: the run's result, the schema the Ansible module and other tools read."""
    if args.output == "json":
        import json

        print(json.dumps({"result": result.to_dict()}, sort_keys=True))


def check(args: argparse.Namespace) -> int:
    from wizard import steps
    from wizard.journal import Journal
    from wizard.node import Node
    from wizard.output import Printer
    from wizard.runner import Runner
    from wizard.steps import Context

    answers = _load(args.file)
    names = steps.select(args.only, args.skip)
    if not names:
        raise InputError("--only and --skip leave no step to check", f"steps are {', '.join(steps.ORDER)}")
    node = Node(args.root)
    printer = Printer(args.output, verbose=args.verbose)
    try:
        # read only: restarts an interrupted run left owed are problems the check reports
        journal = Journal(node.files, _state_dir(args), node.identity())
        ctx = Context(answers, node, emit=printer, ignore_preflight=frozenset(args.ignore_preflight_errors))
        result = Runner(ctx, journal, names).check()
        _print_result(args, result)
        return result.code
    finally:
        node.close()


def undo(args: argparse.Namespace) -> int:
    from wizard.journal import Journal
    from wizard.node import Node
    from wizard.output import Printer
    from wizard.undo import undo_all

    node = Node(args.root)
    try:
        journal = Journal(node.files, _state_dir(args), node.identity())
        journal.check_dir()  # a state dir others could have written to is refused before it is read
        if not journal.exists():
            if node.files.exists(journal.state_dir):
                # a run that stopped before its first change made the state dir (its lock) and nothing else
                print("[ ok ] undo: nothing to undo: no change was recorded on this node")
                return 0
            raise InputError(f"no journal at {journal.path} under {args.root}", "nothing was applied here, or pass --root/--state-dir")
        where = node.files.path(journal.path)
        try:
            demo = journal.belongs_to_demo()
        except (ValueError, AttributeError, TypeError) as exc:
            raise InputError(f"{where} is not a journal the wizard wrote: {exc}", "give the --root/--state-dir of a wizard run") from None
        if demo is not None and not node.simulated:
            # the demo's changes went to files under its root and an in-memory etcd; replaying them here
            # would re-address this machine's links, write its etcd and restart its services
            import shlex
            from pathlib import Path

            demo_root = Path(str(demo.get("root") or "/")).resolve()
            inside = demo_root != Path("/") and where.resolve().is_relative_to(demo_root)
            remove = demo_root if inside else where.resolve().parent  # never suggest `rm -r /`
            raise InputError(
                f"{where} belongs to the demo (scenario {demo.get('scenario', '?')}): its changes were made to a "
                "simulated node and nothing on this machine was changed",
                f"nothing to undo here; remove the demo's files with `rm -r {shlex.quote(str(remove))}`")
        return 1 if undo_all(node, journal, Printer(args.output)) else 0
    finally:
        node.close()


def _need_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InputError("the interactive wizard needs a terminal",
                         "run it from a terminal (ssh -t), or replay headless: `flannel-wizard apply FILE`")


def interactive(args: argparse.Namespace) -> int:
    if TYPE_CHECKING:
        from collections.abc import Callable
    _need_terminal()
    closes: list[Callable[[], None]] = []  # the node's close, once the worker has made it

    def session() -> Session:
        # in the TUI's worker, after the first frame, as the demo's: importing the node and the answers
        # model and building the session are most of a start; what this raises, the CLI reports as before
        from wizard.journal import DEFAULT_STATE_DIR
        from wizard.node import Node
        from wizard.session import Session

        node = Node(args.ui_root)
        closes.append(node.close)
        options = {"state_dir": args.ui_state_dir or DEFAULT_STATE_DIR}
        return Session.from_file(node, args.answers, **options) if args.answers else Session(node, **options)

    from screens.launch import run

    try:
        return run(session)
    finally:
        for close in closes:
            close()


def demo(args: argparse.Namespace) -> int:
    if args.web:
        return _demo_web(args)
    if args.host is not None or args.port is not None:
        raise InputError("--host and --port go with --web", "serve the demo with `flannel-wizard demo --web --port P`")
    import os
    import tempfile

    from wizard import scenarios

    scenario = scenarios.load(args.scenario)
    if args.served:  # one browser session of `demo --web`: textual-serve's pipes are its terminal
        if "TEXTUAL_DRIVER" not in os.environ:
            raise InputError("--served is for the sessions `demo --web` starts", "run `flannel-wizard demo --web`")
    else:
        _need_terminal()
    # the demo's directory now (the signals must know it), its node and session after the first frame
    root = os.path.abspath(tempfile.mkdtemp(prefix=f"flannel-wizard-demo-{scenario['name']}-"))
    _remove_on_signals(root, args.keep)

    def session() -> Session:
        # in the TUI's worker: the node's and the answers model's imports are most of a demo's start
        from wizard.node.simulated import SimulatedNode
        from wizard.session import Session

        node = SimulatedNode(scenario, speed=args.speed, root=root)
        options = {"scenario": scenario}
        return Session.from_file(node, args.answers, **options) if args.answers else Session(node, **options)

    try:
        from screens.launch import run

        return run(session, autoplay=args.autoplay, speed=args.speed, scenario=scenario)
    finally:
        import shlex
        import shutil

        # a served session's stdout is textual-serve's protocol: its words go to stderr (the server's log)
        out = sys.stderr if args.served else sys.stdout
        if args.keep:
            print(f"kept the demo's files (--keep) at {root}: the demo changed only those and an in-memory "
                  f"etcd, so nothing on this machine needs undoing; remove them with "
                  f"`rm -r {shlex.quote(root)}`", file=out)
        else:
            shutil.rmtree(root, ignore_errors=True)
            if not args.served:
                print(f"removed the demo's files ({root}); `flannel-wizard demo --keep` keeps them", file=out)


def _remove_on_signals(root: str, keep: bool) -> None:
    """A demo ended by SIGTERM or SIGHUP (its terminal closed) removes its files too, then dies of the
    signal as before."""
    if keep:
        return
    import os
    import shutil
    import signal

    def remove(signum: int, frame: object) -> None:
        shutil.rmtree(root, ignore_errors=True)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, remove)


def _demo_web(args: argparse.Namespace) -> int:
    from wizard import scenarios, webdemo

    if args.served:
        raise InputError("--served and --web do not go together", "run `flannel-wizard demo --web`")
    scenarios.load(args.scenario)  # an unknown scenario is refused here, not in every browser tab
    if args.answers:
        _load(args.answers)  # likewise a broken answers file
    host = args.host or webdemo.DEFAULT_HOST
    port = args.port or webdemo.DEFAULT_PORT
    command = webdemo.served_command(args.scenario, args.speed, autoplay=args.autoplay, answers=args.answers,
                                     keep=args.keep)
    lines = [f"serving the demo (scenario {args.scenario}) at {webdemo.url_for(host, port)} — each browser tab "
             f"gets its own simulated node; Ctrl+C stops"]
    if args.host is None:
        lines.append(f"listening on {host} only (this machine); `--host ADDR` serves other machines")
    elif not webdemo.is_loopback(host):
        print(f"warning: listening on {host}: anyone who can reach this address can open and drive the demo "
              f"(a simulated node: nothing on this machine changes, but each tab starts a process)",
              file=sys.stderr, flush=True)
    return webdemo.serve(command, host, port, title=f"flannel-wizard demo · {args.scenario}", lines=lines)


def explain_service(args: argparse.Namespace) -> int:
    from wizard.explain import explain, list_services, read_dump, service_ref

    if args.list:
        if args.name is not None:
            raise InputError(f"--list lists every service, and takes no NAME ({args.name})",
                             "drop NAME, or drop --list to trace it; -n NAMESPACE lists one namespace")
        if args.answers:
            raise InputError("--answers names a trace's endpoints; --list does not trace",
                             "drop it, or trace one service: `flannel-wizard explain-service NAMESPACE/NAME`")
    elif args.name is None:
        raise InputError("which service? give NAME or NAMESPACE/NAME",
                         "e.g. `flannel-wizard explain-service default/example-service`; `--list` lists them")
    sources = args.source or []
    if sources.count("-") > 1:
        raise InputError("--from - is given twice: standard input can be read once", "give the others as files")
    if "-" in sources and args.answers == "-":
        raise InputError("--from - and --answers - both read standard input", "give one of them as a file")
    dumps = [read_dump(path) for path in sources] or None
    node = None
    if dumps is None or args.answers or args.kubeconfig:  # a saved dump alone asks the machine nothing
        from wizard.node import Node

        node = Node()
    if args.list:
        try:
            listing = list_services(node, dumps=dumps, mode=args.mode, namespace=args.namespace,
                                    kubeconfig=args.kubeconfig)
        finally:
            if node is not None:
                node.close()
        for warning in listing.warnings:
            sys.stderr.write(f"warning: {warning}\n")
        if listing.ports:
            print(_service_table(listing.ports), end="")
        else:
            sys.stderr.write(f"error: {listing.problem} — {listing.hint}\n")
        return listing.exit_code
    namespace, name = service_ref(args.name, args.namespace)
    answers = _load(args.answers) if args.answers else None
    try:
        found = explain(node, namespace, name, dumps=dumps, mode=args.mode, answers=answers,
                        kubeconfig=args.kubeconfig)
    finally:
        if node is not None:
            node.close()
    from wizard.proxypath import render

    for warning in found.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    if found.outcome != "no-rules":
        print(render(found.tree()), end="")
    if found.outcome == "path":
        print(f"{len(found.trace.endpoints)} endpoint(s) reached: {', '.join(found.trace.endpoints)}")
    else:
        sys.stderr.write(f"error: {found.problem} — {found.hint}\n")
    return found.exit_code


def _service_table(ports: list[ServicePort]) -> str:
    """`explain-service --list`: one row per service port, in columns like kubectl's."""
    named = any(p.port for p in ports)
    rows = [["SERVICE", *(["PORT"] if named else []), "CLUSTER IP", "NODE PORT", "ENDPOINTS"]]
    for p in ports:
        count = str(len(p.endpoints)) if p.endpoints or not p.rejected else "0 (kube-proxy rejects: no endpoints)"
        rows.append([p.service, *([p.port or "-"] if named else []), ",".join(p.addresses) or "-",
                     ",".join(p.node_ports) or "-", count])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
                   for row in rows)
