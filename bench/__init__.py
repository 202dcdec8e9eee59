"""Benchmark of geoapp's spatial engine and HTTP API: ``python -m bench`` (or ``make bench``).

What is measured
----------------
For each size (default 10k, 100k and 1M points) the ``manhole_covers`` layer is filled with
synthetic covers spread uniformly over a 20 km x 20 km square around 113.30E 33.73N, generated
in metres (EPSG:4547) and converted to lon/lat, from a fixed seed: every run sees the same data
and the same query locations.

1. *Index build*: one :class:`geoapp.store.memindex.Snapshot` of the layer (features, the lon/lat and
   metric STR-trees, the projection to metres), and separately the first k-nearest query, which
   also builds the R-tree the snapshot creates on first use.
2. *In-process queries*: ``Engine.query`` at ``--repeat`` random centres for each kind (1 km bbox,
   500 m radius, 10 nearest, within a 1 km² pentagon), and beside it a brute-force scan answering
   the same question on the same features in the same run (numpy comparisons or distances over
   arrays prepared beforehand, ``shapely.intersects`` over every geometry). Every measured answer
   of the engine is compared with the brute-force one.
3. *HTTP API* (sizes up to 100k; ``--no-http`` skips it): the same features written to a real
   GeoPackage and served by gunicorn as ``make run`` starts it, with one worker; bounding boxes
   sized to return about 300 features each, requested on one keep-alive connection, first cold
   (the API builds and caches each feature's JSON) then warm. Beside it, in process on the same
   file: ``Engine.query`` alone, and the same selection serialised afresh per request with
   ``GeoDataFrame.to_json()``.
4. *Map page* (``--no-pages`` skips it, ``--pages-only`` runs it alone): the one-map page with
   1,000 and 100,000 manhole covers, rendered in process beside embedding the covers with
   folium, and loaded in headless Chromium until every layer is drawn; see :mod:`bench.pages`
   for what is measured and how to read its ratios.
5. *Edits* (``--no-edits`` skips it, ``python -m bench edits`` runs it alone): the next read after
   an edit on each of two gunicorn instances serving one store, p99 of reads during a burst of
   100 edits against without, worker memory before and after, start-up time; at 100k and 1M
   covers added to the demo district. See :mod:`bench.edits`; its results go to
   ``bench/results/edits.txt`` and ``edits.json``.

How to read the numbers
-----------------------
Latencies are the median and the 99th percentile of single calls timed with ``perf_counter_ns``
(garbage collection paused while timing). A *ratio* is the baseline's median divided by the
measured path's median: ``brute/index`` 40x means the index answers 40 times faster than a full
scan; below 1x the index loses to the scan. ``rebuilt/API`` compares serialising per request in
process with the whole warmed HTTP round trip, so above 1x the cache beats even skipping HTTP.
Ratios carry over to other machines better than absolute times do. The targets at the end are
reported as PASS or MISS; only a wrong answer makes the program exit with status 1.

Results are printed and written to ``bench/results/latest.json`` (git-ignored), with the package
versions and commit they were measured on.
"""
