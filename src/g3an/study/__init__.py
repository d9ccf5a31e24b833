"""Human preference studies (the paper's Table 2): create pairs, serve them to raters, report results.

See ``docs/study.md``; the modules are :mod:`g3an.study.create`, :mod:`g3an.study.db`,
:mod:`g3an.study.server` and :mod:`g3an.study.results`.
"""
