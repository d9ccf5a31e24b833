"""Video data: the prepared on-disk format, the clip loader, the embedded synthetic datasets, preparation.

``g3an.data.format`` (:func:`open_dataset`, :class:`DatasetWriter`) and ``g3an.data.loader``
(:class:`ClipDataset`) are the entry points; see ``docs/data.md``.
"""
