"""The data tools (S000), one package each: `profile`, `clean`, `master`.

A tool package declares a `Tool` from its `parameters`, `agents` (each `run(ctx) -> result`),
`report` (its `ReportSections`) and `cards` (its results page as typed cards); `catalogue`
lists the packages. What they share is in `common`; `run` runs a task's agents in its child
process and `flow` is the file flow (create, upload, process, retry, downloads, report).
"""
