"""What every page's JavaScript holds: no whole component library that no page draws whole.

Reflex 0.10.1 writes into the app's root module (`.web/app/root.jsx`, every page's parent)
`import * as radix_ui_themes from "@radix-ui/themes"` and puts the namespace on
`window.__reflex`, for *dynamic components* (component code sent by the backend at run time
and evaluated in the browser). `reflex/compiler/compiler.py:146-200` (`_get_window_libraries`,
`_compile_app`) takes the list from the registration context, to which the Radix Themes plugin
adds its package at every compile (`compiler.py:1306-1308`). A namespace import keeps every
export, so the bundler cannot leave anything out: all of Radix Themes and its primitives
(navigation menu, slider, menus, scroll area…) went into a chunk every page loads, 76 KB
gzipped of the 264 KB `/tasks` loaded. With `frontend_lazy_bundled_libraries` the import
becomes `import("@radix-ui/themes")`, but the bundler then merges that whole namespace into
the chunk the pages share, which loads anyway (measured: 254 KB).

SpyGlass has no dynamic component (no state var holds a component, nothing reads
`window.__reflex`), so `keep_radix_out_of_the_root()` drops that namespace from the list: each
page then loads the Radix components it draws, through ordinary named imports the bundler
can tree-shake. React, emotion and Reflex's own modules stay on `window.__reflex` as before.
Remove this if a page ever renders a component held in state (`rx.Component` as a var).
"""

from __future__ import annotations

from collections.abc import Callable

#: Whole libraries not put on `window.__reflex` (no dynamic component needs them).
LEFT_OUT = frozenset({"@radix-ui/themes"})


def keep_radix_out_of_the_root() -> None:
    """Have Reflex's compiler leave the `LEFT_OUT` namespaces out of the root module."""
    from reflex.compiler import compiler

    original: Callable[[], list[tuple[str, str]]] = compiler._get_window_libraries  # noqa: SLF001
    if getattr(original, "spyglass", False):
        return

    def window_libraries() -> list[tuple[str, str]]:
        return [(alias, lib) for alias, lib in original() if lib not in LEFT_OUT]

    window_libraries.spyglass = True  # type: ignore[attr-defined]
    compiler._get_window_libraries = window_libraries  # noqa: SLF001
