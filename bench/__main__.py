"""``python -m bench [options]``: the whole benchmark (:mod:`bench.suite`); ``python -m bench edits [options]``: the
edits part alone (:mod:`bench.edits`); ``python -m bench scale [options]``: the scale figures per backend
(:mod:`bench.scale`); ``python -m bench imports``: a 100k-row CSV imported (:mod:`bench.imports`);
``python -m bench exports``: a 100k-feature layer exported in every format (:mod:`bench.exports`);
``python -m bench cases``: the case indicators of 1M cases over ten years on PostGIS (:mod:`bench.cases`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["edits"]:
        # imported alone: the edits part needs the HTTP API only, not the engine internals the other parts import
        from bench import edits

        return edits.main(argv[1:])
    if argv[:1] == ["static"]:
        # nginx and wrk against gunicorn: the servers only
        from bench import static

        return static.main(argv[1:])
    if argv[:1] == ["pygeoapi"]:
        from bench import pygeoapi

        return pygeoapi.main(argv[1:])
    if argv[:1] == ["imports"]:
        # a 100k-row CSV imported into a copy of the demo store, beside a geopandas + pyogrio baseline
        from bench import imports

        return imports.main(argv[1:])
    if argv[:1] == ["exports"]:
        # the same store with 100k more covers, exported in each format beside a geopandas + pyogrio baseline
        from bench import exports

        return exports.main(argv[1:])
    if argv[:1] == ["cases"]:
        # ten years of a city's cases in a PostGIS store, the indicators grouped in SQL beside a count(*) scan
        from bench import cases

        return cases.main(argv[1:])
    if argv[:1] == ["scale"]:
        # the same: servers, wrk and the HTTP API only
        from bench import scale

        return scale.main(argv[1:])
    if argv[:1] == ["soak"]:
        # flood readings from simulated sensors while boards poll: the servers and the HTTP API only
        from bench import soak

        return soak.main(argv[1:])
    from bench import suite

    return suite.main(argv)


if __name__ == "__main__":
    sys.exit(main())
