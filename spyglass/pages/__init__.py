"""The app's pages (Reflex components), one module a page.

Two things mypy sees differently from the page:

- A state var is typed by its annotation (`rows: list[TaskRow]` is a list to mypy), while on
  the page it is a Var. To use a Var method on one (`.length()`, `.to(str)`), the pages wrap
  it in `rx.Var.create(...)`, which returns a Var as it is and types it as a Var.
- Reflex's `@rx.event` names its return type (`EventCallback`) through a class attribute of
  `EventNamespace` that mypy can't use as a type, so to mypy every decorated handler is an
  `EventNamespace`, and calling one (`State.cancel(task_id)`) is "not callable". Those calls
  carry `# type: ignore[operator]` (`[attr-defined]` for `.debounce`) pointing here.
"""
