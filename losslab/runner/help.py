"""``losslab train --help``: the help text of the packaged config tree.

Hydra's own ``--help`` lists the config groups through its config loader,
which copies its whole config repository for every group it lists (seconds for
this tree). Here the same text comes from one composition of the config: the
``hydra.help.template`` of the composed config, with ``$APP_CONFIG_GROUPS``
listed from the packaged tree and ``$CONFIG`` the job config as YAML, exactly
as Hydra 1.3 renders it (``Hydra.app_help``). Anything else (a user's config
tree, ``--hydra-help``, ``--info``, ``--version``, a template with Hydra's
other placeholders, a config that does not compose) goes to Hydra unchanged.
"""

from __future__ import annotations

import copy
import string

from losslab.runner.preflight import (
    CONFIG_MODULE,
    CONFIG_NAME,
    args_parser,
    config_tree,
    default_tree,
    format_app_groups,
)


def help_text(argv: list[str]) -> str | None:
    """The text Hydra's ``--help`` prints for ``argv``, or None to leave it to Hydra."""
    try:
        args = args_parser(quiet=True).parse_args(argv)
    except ValueError:
        return None  # Hydra reports a bad command line
    if not args.help or args.version or args.experimental_rerun is not None:
        return None
    if not default_tree(args):
        return None
    try:
        return _render(args.overrides, resolve=args.resolve)
    except Exception:
        return None  # Hydra reports what it cannot compose or render


def _render(overrides: list[str], *, resolve: bool) -> str | None:
    from hydra import compose, initialize_config_module
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, flag_override

    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose(config_name=CONFIG_NAME, overrides=overrides, return_hydra_config=True)
    if cfg.hydra.verbose:
        return None  # Hydra logs its debug information with the help
    HydraConfig.instance().set_config(cfg)
    template = string.Template(cfg.hydra.help.template)  # ${hydra.help.header} resolved
    job = copy.deepcopy(cfg)
    with flag_override(job, ["struct", "readonly"], [False, False]):
        del job["hydra"]
    # KeyError for Hydra's other placeholders ($FLAGS_HELP, $HYDRA_CONFIG_GROUPS): Hydra's
    return template.substitute(
        APP_CONFIG_GROUPS=format_app_groups(config_tree()),
        CONFIG=OmegaConf.to_yaml(job, resolve=resolve),
    )


def print_help(argv: list[str]) -> bool:
    """Print the help text for ``argv`` and return True, or return False for Hydra to."""
    text = help_text(argv)
    if text is None:
        return False
    print(text)
    return True
