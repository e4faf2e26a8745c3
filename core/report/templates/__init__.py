"""HTML templates of the reports (package data, :class:`string.Template` syntax).

``page.html`` is the document (read verbatim: it holds the CSS). ``experiment.html`` and
``design.html`` hold named sections (``<!-- section: name -->``); their layout whitespace (line
breaks and indentation) is dropped when they are read, so they can be indented for reading while
the rendered HTML stays compact. Every substituted value is HTML-escaped by the renderer before it
gets here.
"""
