"""``export-prompt``, ``import-prompt``, ``export-prompts``, ``import-prompts``: mlflow-export-import's flags.

``--use-threads`` is a plain flag, as the peer spells it for these commands: with it, prompts are
carried ``--workers`` at a time; without it, one after the other (a prompt's own versions are
always created in order).
"""

from __future__ import annotations

import click

from ferry.cli import registry_options as opts
from ferry.engine import prompts as engine

use_threads = click.option("--use-threads", is_flag=True, default=False,
                           help="Carry several prompts at once (--workers of them).")


@opts.command("Export one version of a prompt as <output-dir>/prompt.json.")
@click.option("--prompt-name", required=True, help="Name of the prompt to export.")
@click.option("--prompt-version", required=True, help="Version of the prompt to export.")
@opts.output_dir
@opts.workers_and_quiet
@opts.run_command
def export_prompt(ctx: opts.Context, prompt_name: str, prompt_version: str, output_dir: str):
    return engine.export_prompt(ctx.client(), prompt_name, prompt_version, output_dir)


@opts.command("Import a prompt version written by export-prompt (ours or mlflow-export-import's).")
@opts.input_dir
@click.option("--prompt-name", help="Destination prompt name. Default: the exported prompt's name.")
@opts.flag("--delete-prompt", "If the prompt exists, first delete it and all its versions.")
@opts.workers_and_quiet
@opts.run_command
def import_prompt(ctx: opts.Context, input_dir: str, prompt_name: str | None, delete_prompt: bool):
    return engine.import_prompt(ctx.client(), input_dir, prompt_name=prompt_name, delete_prompt=delete_prompt)


@opts.command("Export prompts with all their versions, tags and aliases.")
@opts.output_dir
@click.option("--prompts", required=True,
              help="Prompt names: 'all', a comma separated list, or a file ending in '.txt' with one per line.")
@use_threads
@opts.workers_and_quiet
@opts.run_command
def export_prompts(ctx: opts.Context, output_dir: str, prompts: str, use_threads: bool):
    return engine.export_prompts(ctx.client(), opts.names_argument(prompts), output_dir,
                                 workers=ctx.workers if use_threads else 1)


@opts.command("Import the prompts written by export-prompts, each one's versions in order.")
@opts.input_dir
@opts.flag("--delete-prompt", "If a prompt exists, first delete it and all its versions.")
@use_threads
@opts.workers_and_quiet
@opts.run_command
def import_prompts(ctx: opts.Context, input_dir: str, delete_prompt: bool, use_threads: bool):
    return engine.import_prompts(ctx.client(), input_dir, delete_prompt=delete_prompt,
                                 workers=ctx.workers if use_threads else 1)
