"""The `nandoctor` command. The only module that exits; exit codes are named here."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, NoReturn

import click

from nandoctor import __version__
from nandoctor.report import EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNUSABLE, Severity
from nandoctor.reporters import FORMATS as REPORT_FORMATS

__all__ = ["EXIT_CLEAN", "EXIT_FINDINGS", "EXIT_UNUSABLE", "main", "run"]

_SEVERITIES = [severity.value for severity in Severity]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nandoctor")
def main() -> None:
    """Find the faults that make Keras models fail without an error message."""


def run() -> NoReturn:
    """The `nandoctor` command ([project.scripts], `python -m nandoctor`): `main`, then, once
    what it wrote is flushed, an exit that leaves the objects of the run where they are rather
    than freeing each (Python's own teardown took 11 ms after a report of thousands of files, a
    tenth of a cached scan of them). Every file the commands write is closed by then; tests
    call `main` itself."""
    # No command multiplies matrices with numpy (the static scan never does): OpenBLAS's threads,
    # started when numpy is imported, only spin on the core that scan workers are about to take
    # (in a two-job scan of 3,010 files: 60-80 ms of CPU, 10 ms of time before the fork). A
    # user's own setting stands.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        main(prog_name="nandoctor")
        code: Any = EXIT_CLEAN
    except SystemExit as stop:
        code = stop.code
    if code is None:
        code = EXIT_CLEAN
    elif not isinstance(code, int):  # as Python's own exit treats a message
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away (`| head`), or a closed stream: nothing more to say to it.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


class _ScanCommand(click.Command):
    """`scan --help` names the formats from the FORMATS table itself, so that the help cannot
    drift from what the loaders read (the table is imported only when help is asked for)."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.help = (self.help or "").replace("{formats}", formats_help())
        super().format_help_text(ctx, formatter)


def formats_help() -> str:
    """Every format family the scan reads, with the suffixes or the folder that holds it."""
    from nandoctor.loaders import FORMATS

    families: dict[str, list[str]] = {}
    for format_ in FORMATS:
        where = families.setdefault(format_.name, [])
        where.extend(format_.suffixes or ["a folder"])
    return ", ".join(f"{name} ({', '.join(where)})" for name, where in families.items())


@main.command(cls=_ScanCommand)
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "output_format",
    type=click.Choice(list(REPORT_FORMATS)),
    default="text",
    show_default=True,
    help="Report format, printed on stdout (github: Actions annotations; junit: JUnit XML).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to this file instead.")
@click.option(
    "--select",
    multiple=True,
    metavar="CODES",
    help="Rules to run: codes (ND101), families (ND1) or names, comma-separated.",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="CODES",
    help="Rules to skip, as for --select; CODE:LAYER suppresses a code on layers matching a glob.",
)
@click.option(
    "--fail-on",
    type=click.Choice(_SEVERITIES),
    default=None,
    help="Exit 1 when a finding is at or above this severity.  [default: warning]",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings reach --fail-on.")
@click.option("--statistics", is_flag=True, help="Print a count per code instead of each finding (text, json).")
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Accept the findings recorded in FILE: only new ones are reported; stale entries are named.",
)
@click.option(
    "--write-baseline",
    "write_baseline_file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Record every finding in FILE, for --baseline, and exit 0.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour the text report (auto: on a terminal, unless NO_COLOR is set or FORCE_COLOR asks).",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Load the models with Keras (running their code: only files you trust) and probe them live.",
)
@click.option(
    "--custom-objects",
    "custom_objects",
    multiple=True,
    metavar="MODULE",
    help="With --trust: import MODULE first (from the current folder too), to register your custom classes.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Scan files in N processes (the report is the same, in the same order).  [default: the CPU count]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop a file's scan after SECONDS: that file gets a one-line error, the others are scanned.",
)
@click.option("--no-cache", is_flag=True, help="Read every file again, even one unchanged since the last scan.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Keep the cache in DIR (also NANDOCTOR_CACHE_DIR, or cache-dir in [tool.nandoctor]).  "
    "[default: .nandoctor_cache beside pyproject.toml]",
)
def scan(
    paths,
    output_format,
    output,
    select,
    ignore,
    fail_on,
    exit_zero,
    statistics,
    baseline_file,
    write_baseline_file,
    quiet,
    color,
    trust,
    custom_objects,
    jobs,
    timeout,
    no_cache,
    cache_dir,
) -> None:
    """Examine saved models and embedding matrices without running them.

    PATHS are files, or directories to search for them, in these formats: {formats}.
    Nothing in a file is executed, and TensorFlow is never imported.

    Files are scanned in parallel, and a file unchanged since the last scan with the same
    rules is not read again (--no-cache reads it). --trust loads models one at a time, uncached.

    Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 unusable input.
    """
    from nandoctor import console
    from nandoctor.engine import scan as run_scan
    from nandoctor.parallel import cpu_count
    from nandoctor.settings import load_settings

    if custom_objects and not trust:
        raise click.UsageError("--custom-objects loads your code and goes with --trust.")
    if statistics and output_format not in ("text", "json"):
        raise click.UsageError("--statistics prints text or json.")
    if baseline_file and write_baseline_file:
        raise click.UsageError("Give --baseline or --write-baseline, not both.")
    try:
        settings = load_settings()
        chosen: dict[str, Any] = {
            "select": list(select) or settings.select,
            "ignore": [*settings.ignore, *ignore],
            "options": settings.options,
            "per_file_ignores": settings.per_file_ignores,
        }
        if trust:
            from nandoctor.engine import scan_trusted

            report = scan_trusted(list(paths), custom_objects=custom_objects, **chosen)
        else:
            report = run_scan(
                list(paths),
                progress=None if quiet else console.WeightProgress(),
                jobs=jobs or cpu_count(),
                timeout=timeout,
                cache_dir=None if no_cache else settings.scan_cache_folder(cache_dir),
                **chosen,
            )
        if baseline_file:
            from nandoctor.baseline import apply_baseline, read_baseline

            report = apply_baseline(report, read_baseline(baseline_file)).report
        threshold = fail_on or settings.fail_on or Severity.WARNING.value
        code = report.exit_code(threshold)
    except ValueError as error:  # a selector, an option, a setting, a module, a baseline: one line, exit 2
        _fail(str(error))

    for failed in report.errors:
        console.error(f"{failed.path}: {failed.error}")
    if write_baseline_file:
        _write_baseline(report, write_baseline_file)
        sys.exit(EXIT_UNUSABLE if report.errors else EXIT_CLEAN)
    text = _render_scan(
        report, output_format, statistics, threshold, _text_options(output_format, output, quiet, color)
    )
    if output:
        try:
            with open(output, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as error:
            _fail(f"cannot write {output}: {error.strerror or error}")
    else:
        # The text carries colour only when --color asked for it; click would strip it from a pipe.
        click.echo(text, nl=not text.endswith("\n"), color=True)
    if exit_zero and code == EXIT_FINDINGS:
        code = EXIT_CLEAN
    sys.exit(code)


def _render_scan(report, output_format: str, statistics: bool, threshold: str, text_options: dict) -> str:
    from nandoctor.reporters import render

    if statistics:
        from nandoctor.reporters.statistics import render_statistics_json, render_statistics_text

        if output_format == "json":
            return render_statistics_json(report)
        return render_statistics_text(report, summary=text_options["summary"], unreadable=text_options["unreadable"])
    if output_format == "junit":
        return render(report, output_format, fail_on=threshold)
    return render(report, output_format, **text_options)


def _write_baseline(report, path: str) -> None:
    from nandoctor import console
    from nandoctor.baseline import write_baseline
    from nandoctor.diagnosis import plural

    try:
        written = write_baseline(report, path)
    except OSError as error:
        _fail(f"cannot write {path}: {error.strerror or error}")
    console.console.print(f"nandoctor: wrote {plural(written, 'finding')} to the baseline {path}", soft_wrap=True)


@main.command(name="fix")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Path(), help="Write the fixed file here (a folder for several inputs).")
@click.option("--in-place", is_flag=True, help="Replace each input with its fixed file (written aside, then renamed).")
@click.option("--diff", is_flag=True, help="Print every change, layer by layer and row by row.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply fixes that change what the model computes.")
@click.option("--select", multiple=True, metavar="CODES", help="Rules whose findings to fix, as for scan.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Rules whose findings to leave, as for scan.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random rows given to zero rows.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Report format, printed on stdout.",
)
@click.option(
    "--fail-on",
    type=click.Choice(_SEVERITIES),
    default=None,
    help="Exit 1 when a finding still there is at or above this severity.  [default: warning]",
)
@click.option("-q", "--quiet", is_flag=True, help="No summary line.")
def fix_command(
    paths, output, in_place, diff, unsafe_fixes, select, ignore, seed, output_format, fail_on, quiet
) -> None:
    """Apply the fixes of the findings to model files and embedding tables, as ruff --fix does.

    Safe fixes keep what the model computes, or make it compute what it claimed to: a zero
    padding row, a sigmoid for a softmax over one unit, small random vectors for zero rows.
    Unsafe fixes change the model (it needs training) and run only with --unsafe-fixes. The
    result is scanned before it is written; nothing in a file is executed.

    With neither --output nor --in-place nothing is written: --diff then shows what would change.
    Exit codes: 0 nothing at or above --fail-on remains, 1 findings remain, 2 unusable input.
    """
    from nandoctor import console
    from nandoctor.fix.runner import fix as run_fix
    from nandoctor.reporters import render
    from nandoctor.settings import load_settings

    if output and in_place:
        raise click.UsageError("Give --output or --in-place, not both.")
    if not (output or in_place or diff):
        raise click.UsageError(
            "nandoctor fix writes a new file: give --output OUT or --in-place "
            "(or --diff to see the changes without writing)."
        )
    try:
        settings = load_settings()
        report = run_fix(
            list(paths),
            output=output,
            in_place=in_place,
            unsafe_fixes=unsafe_fixes,
            select=list(select) or settings.select,
            ignore=[*settings.ignore, *ignore],
            options=settings.options,
            per_file_ignores=settings.per_file_ignores,
            seed=seed,
        )
        code = report.exit_code(fail_on or settings.fail_on or Severity.WARNING.value)
    except ValueError as error:
        _fail(str(error))
    for result in report.files:
        _say_how_to_load(result)
    for failed in report.errors:
        console.error(f"{failed.path}: {failed.error}")
    options = {**_text_options(output_format, None, quiet, "never"), "diff": diff} if output_format == "text" else {}
    text = render(report, output_format, **options)
    click.echo(text, nl=not text.endswith("\n"))
    sys.exit(code)


def _say_how_to_load(result) -> None:
    """A file that now holds nandoctor's layers loads only once they are registered: Keras
    says "could not be deserialized properly" unless `nandoctor` was imported first."""
    if not result.output:
        return
    from nandoctor.loaders import load

    try:
        with load(result.output) as view:
            classes = sorted(
                {layer.class_name for layer in view.layers if (layer.registered_name or "").startswith("nandoctor>")}
            )
    except Exception:  # the fixed file was scanned already; a reread failing says nothing new
        return
    if classes:
        result.notes.append(
            f"{result.output} holds nandoctor layers ({', '.join(classes)}): import nandoctor "
            "before keras.saving.load_model, which cannot rebuild them otherwise"
        )


def _fail(message: str) -> NoReturn:
    from nandoctor import console

    console.error(" ".join(message.split()))
    sys.exit(EXIT_UNUSABLE)


def _text_options(output_format: str, output: str | None, quiet: bool, color: str) -> dict:
    if output_format != "text":
        return {}
    import shutil

    to_terminal = output is None and stdout_is_terminal()
    return {
        "color": use_color(color, to_terminal),
        "width": shutil.get_terminal_size((100, 24)).columns if to_terminal else 100,
        "summary": not quiet,
        # Unreadable files were each said on stderr; a report written to a file says them itself.
        "unreadable": output is not None,
    }


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def use_color(choice: str, to_terminal: bool) -> bool:
    """`--color`: always and never say so; auto colours a terminal unless NO_COLOR is set,
    and FORCE_COLOR colours even a pipe (https://no-color.org, https://force-color.org)."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or to_terminal


@main.command(name="plot")
@click.argument("log", type=click.Path())
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="health.png",
    show_default=True,
    help="PNG file to write.",
)
def plot(log: str, output: str) -> None:
    """Draw a Monitor health log (a nandoctor-health.jsonl, or its directory) as a PNG."""
    from nandoctor.errors import UnreadableFile

    try:
        from nandoctor.monitor.plot import plot_health, read_log

        written = plot_health(read_log(log), output, title=f"nandoctor health: {log}")
    except ImportError:
        _fail("nandoctor plot needs matplotlib: pip install 'nandoctor[plot]'")
    except UnreadableFile as error:
        _fail(str(error))
    click.echo(f"wrote {written}")


@main.command(name="rules")
def list_rules() -> None:
    """List every diagnosis: code, name, default severity, where it runs, what it does.

    file: the static scan (and check() on a live model); live: only on a live model
    (check(), scan --trust); training: the Monitor.
    """
    from rich.console import Console
    from rich.table import Table

    from nandoctor.catalogue import DIAGNOSES

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("code", "name", "severity", "runs on"):
        table.add_column(column, no_wrap=True)
    table.add_column("what it does", overflow="fold", ratio=1)
    for diagnosis in DIAGNOSES:
        table.add_row(
            diagnosis.code, diagnosis.name, diagnosis.severity.value, diagnosis.runs_on.value, diagnosis.summary()
        )
    Console(highlight=False).print(table)


@main.command(name="rule")
@click.argument("code")
def show_rule(code: str) -> None:
    """Print a rule's documentation (a code such as ND101, or a name): rendered on a
    terminal, Markdown when piped."""
    from nandoctor.catalogue import find
    from nandoctor.docgen import rule_page

    diagnosis = find(code)
    if diagnosis is None:
        _fail(
            f"Unknown rule. Expected a code (ND101) or a name (zero-embedding-rows); "
            f"`nandoctor rules` lists them. Received: {code!r}"
        )
    page = rule_page(diagnosis)
    if stdout_is_terminal():
        from rich.console import Console
        from rich.markdown import Markdown

        Console(highlight=False).print(Markdown(page))
    else:
        click.echo(page, nl=False)
