"""SpyGlass: long-running background tasks, watched live by browsers, scripts and terminals."""
