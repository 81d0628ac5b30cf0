"""The ``ministeer`` command line. Each subcommand lives in its own module as ``main(argv)``.

Subcommands are imported only when called, so ``ministeer sites`` never pays for
matplotlib or the experiments. A ``UsageError`` from any of them (``ministeer.usage``) is
printed as one line on stderr with exit status 2.
"""
import importlib
import sys

from .usage import UsageError

COMMANDS = {  # name -> ("module:function", one-line help)
    "sites": ("ministeer.cli:sites", "print the table of intervention sites"),
    "bench": ("ministeer.perf.bench:main", "ms per training step and forward, vs PyTorch eager if installed"),
    "verify": ("ministeer.verify:main", "check every claim of the paper on random models (and --model DIR)"),
    "exercises": ("ministeer.exercises:main", "grade your exercise answers (default my_answers/; --list; --class DIR; notebook DIR)"),
    "pretrain": ("ministeer.experiments.pretrain:main", "regenerate the shipped base model and its card"),
    "compare": ("ministeer.experiments.compare:main", "every method x task x seed: the paper's Table 1 at toy scale"),
    "analyze": ("ministeer.experiments.analyze:main", "oracle analyses of a fine-tuned model (MLP share, spectra, KL)"),
}


def usage():
    lines = ["usage: ministeer <command> [options]", "", "commands:"]
    lines = lines + [f"  {name:<10} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines + ["", "ministeer <command> --help shows a command's options."])


def sites(argv=()):
    """``ministeer sites [--preset llama|gpt2]``: print the site table."""
    from .model import PRESETS
    from .usage import Parser
    from .sites import site_table
    parser = Parser(prog="ministeer sites", description="List every intervention site.")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="llama")
    args = parser.parse_args(argv)
    print(site_table(PRESETS[args.preset]()))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"ministeer: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, func = COMMANDS[argv[0]][0].split(":")
    try:
        return getattr(importlib.import_module(module), func)(argv[1:]) or 0
    except UsageError as err:  # a user error: one line, no traceback (ministeer.usage)
        where = "" if "--help" in str(err) else f" (see ministeer {argv[0]} --help)"
        print(f"ministeer {argv[0]}: {err}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
