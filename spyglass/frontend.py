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
from typing import Any

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


# -- the toaster, loaded on the first toast ----------------------------------------------------

#: Module code of the page that holds the toaster (the app's root): `refs['__toast']` (what
#: `rx.toast.*` events and Reflex's connection banner call) answers at once, and the first toast
#: (not `dismiss`, which has nothing to do until one was shown) imports sonner, mounts its
#: `Toaster` and then shows it. (A toast asked for while the server is unreachable, and sonner
#: not loaded yet, is not shown: Reflex's connection banner then shows only its icon.)
LAZY_TOASTER_JS = """
const spyglassToast = (() => {
  let ready = null;
  let mount = null;
  let waiting = null;
  const load = () => (ready ??= import("sonner").then((sonner) => new Promise((resolve) => {
    const go = () => mount(sonner, () => resolve(sonner.toast));
    if (mount) go(); else waiting = go;
  })).catch((error) => {
    ready = null; // the server is unreachable (the code could not load): try again next time
    throw error;
  }));
  const later = (method) => (...args) => {
    load().then((toast) => (method ? toast[method](...args) : toast(...args)), () => {});
  };
  const toast = later(null);
  for (const method of ["success", "info", "warning", "error", "loading", "message", "custom",
    "promise"]) toast[method] = later(method);
  toast.dismiss = (...args) => { if (ready) ready.then((t) => t.dismiss(...args), () => {}); };
  const setMount = (fn) => {
    mount = fn;
    if (waiting) { const go = waiting; waiting = null; go(); }
  };
  return { toast, setMount };
})();
refs["__toast"] = spyglassToast.toast;

function SpyglassToaster(props) {
  const [sonner, setSonner] = useState(null);
  const mounted = useRef(null);
  useEffect(() => {
    spyglassToast.setMount((module, done) => { mounted.current = done; setSonner(module); });
  }, []);
  useEffect(() => {
    // sonner's Toaster has subscribed (a child's effects run first): the toast may show.
    if (sonner && mounted.current) { const done = mounted.current; mounted.current = null; done(); }
  }, [sonner]);
  return sonner ? jsx(sonner.Toaster, props) : null;
}
"""


def lazy_toaster() -> Any:
    """Reflex's toast provider (same props: bottom right, rich colours, the colour mode), whose
    library, sonner (10 KB gzipped), loads with the first toast instead of with every page.

    Reflex puts `rx.toast.provider()` in the root of every page, so sonner was in the JS each
    page loads before it draws, though most visits show no toast at all."""
    from reflex_components_sonner.toast import Toaster  # type: ignore[import-untyped]

    class LazyToaster(Toaster):  # type: ignore[misc]
        library: str | None = None
        tag = "SpyglassToaster"
        lib_dependencies: list[str] = ["sonner@2.0.8"]  # imported lazily

        def add_imports(self) -> dict[str, Any]:
            return {
                "react": ["useState", "useEffect", "useRef"],
                "$/utils/state": ["refs"],
                "@emotion/react": ["jsx"],
            }

        def add_custom_code(self) -> list[str]:
            return [LAZY_TOASTER_JS]

    return LazyToaster.create()
