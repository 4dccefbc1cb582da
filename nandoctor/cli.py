"""The `nandoctor` command. The only module that exits; exit codes are named here."""

from __future__ import annotations

import sys

import click

from nandoctor import __version__
from nandoctor.report import EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNUSABLE, Severity

__all__ = ["EXIT_CLEAN", "EXIT_FINDINGS", "EXIT_UNUSABLE", "main"]

_SEVERITIES = [severity.value for severity in Severity]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nandoctor")
def main() -> None:
    """Find the faults that make Keras models fail without an error message."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "output_format", type=click.Choice(["text", "json", "sarif", "github"]), default="text",
              show_default=True, help="Report format, printed on stdout (github: Actions annotations).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to this file instead.")
@click.option("--select", multiple=True, metavar="CODES",
              help="Rules to run: codes (ND101), families (ND1) or names, comma-separated.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Rules to skip, as for --select.")
@click.option("--fail-on", type=click.Choice(_SEVERITIES), default=None,
              help="Exit 1 when a finding is at or above this severity.  [default: warning]")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings reach --fail-on.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@click.option("--trust", is_flag=True,
              help="Load the models with Keras (running their code: only files you trust) and probe them live.")
@click.option("--custom-objects", "custom_objects", multiple=True, metavar="MODULE",
              help="With --trust: import MODULE first, to register your custom classes.")
def scan(paths, output_format, output, select, ignore, fail_on, exit_zero, quiet, trust, custom_objects) -> None:
    """Examine saved models and embedding matrices without running them.

    PATHS are .keras, .h5/.hdf5, .weights.h5, .npy, .npz and word2vec (.vec, .txt,
    .bin) files, or directories to search for them. Nothing in a file is executed, and
    TensorFlow is never imported.

    Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 unusable input.
    """
    from nandoctor import console
    from nandoctor.engine import scan as run_scan
    from nandoctor.reporters import render
    from nandoctor.settings import SettingsError, load_settings

    if custom_objects and not trust:
        raise click.UsageError("--custom-objects loads your code and goes with --trust.")
    try:
        settings = load_settings()
        chosen = {"select": list(select) or settings.select, "ignore": list(ignore) or settings.ignore,
                  "options": settings.options}
        if trust:
            from nandoctor.engine import scan_trusted

            report = scan_trusted(list(paths), custom_objects=custom_objects, **chosen)
        else:
            report = run_scan(list(paths), progress=None if quiet else console.WeightProgress(), **chosen)
        threshold = fail_on or settings.fail_on or Severity.WARNING.value
        code = report.exit_code(threshold)
    except (ValueError, SettingsError) as error:
        raise click.UsageError(str(error)) from None

    for failed in report.errors:
        console.error(f"{failed.path}: {failed.error}")
    text = render(report, output_format, **_text_options(output_format, output, quiet))
    if output:
        try:
            with open(output, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as error:
            console.error(f"cannot write {output}: {error.strerror or error}")
            sys.exit(EXIT_UNUSABLE)
    else:
        click.echo(text, nl=not text.endswith("\n"))
    if exit_zero and code == EXIT_FINDINGS:
        code = EXIT_CLEAN
    sys.exit(code)


def _text_options(output_format: str, output: str | None, quiet: bool) -> dict:
    if output_format != "text":
        return {}
    import shutil

    from nandoctor.console import console

    to_terminal = output is None and sys.stdout.isatty()
    return {
        "color": to_terminal and not console.no_color,
        "width": shutil.get_terminal_size((100, 24)).columns if to_terminal else 100,
        "summary": not quiet,
    }


@main.command(name="plot")
@click.argument("log", type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="health.png", show_default=True,
              help="PNG file to write.")
def plot(log: str, output: str) -> None:
    """Draw a Monitor health log (a nandoctor-health.jsonl, or its directory) as a PNG."""
    from nandoctor import console
    from nandoctor.errors import UnreadableFile

    try:
        from nandoctor.plot import plot_health, read_log

        written = plot_health(read_log(log), output, title=f"nandoctor health: {log}")
    except ImportError:
        console.error("nandoctor plot needs matplotlib: pip install 'nandoctor[plot]'")
        sys.exit(EXIT_UNUSABLE)
    except UnreadableFile as error:
        console.error(str(error))
        sys.exit(EXIT_UNUSABLE)
    click.echo(f"wrote {written}")


@main.command(name="rules")
def list_rules() -> None:
    """List every rule (and training detector): code, name, default severity, what it does."""
    from rich.console import Console
    from rich.table import Table

    from nandoctor.monitor import DETECTORS
    from nandoctor.rules import RULES

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("code", "name", "severity", "what it does"):
        table.add_column(column, overflow="fold")
    for rule in RULES:
        table.add_row(rule.code, rule.name, rule.severity.value, rule.summary())
    for detector in DETECTORS:
        table.add_row(detector.code, detector.name, detector.severity.value, detector.summary() + " (Monitor)")
    from nandoctor.probes import LIVE_RULES

    for live in LIVE_RULES:
        table.add_row(live.code, live.name, live.severity.value, live.summary() + " (live)")
    Console(highlight=False).print(table)


@main.command(name="rule")
@click.argument("code")
def show_rule(code: str) -> None:
    """Print a rule's documentation (a code such as ND101, or a name)."""
    from nandoctor.docgen import rule_page
    from nandoctor.monitor import DETECTORS
    from nandoctor.probes import LIVE_RULES
    from nandoctor.rules import find_rule

    others = [*DETECTORS, *LIVE_RULES]
    rule = find_rule(code) or next((d for d in others if code.upper() == d.code or code.lower() == d.name), None)
    if rule is None:
        raise click.UsageError(f"Unknown rule. Expected a code (ND101) or a name. Received: {code!r}")
    click.echo(rule_page(rule), nl=False)
