// Converts points with gcoord (the library the browser uses) for tests/test_chinacoords.py.
// stdin: {"points": [[lon, lat], ...], "pairs": ["WGS84>GCJ02", ...]}
// stdout: {"version": "1.0.7", "WGS84>GCJ02": [[lon, lat], ...], ...}, one list for each pair asked for.
"use strict";
const path = require("path");
const root = path.join(__dirname, "..", "..", "node_modules", "gcoord");
const gcoord = require(path.join(root, "dist", "gcoord.cjs.js"));

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const request = JSON.parse(input);
  const out = { version: require(path.join(root, "package.json")).version };
  for (const pair of request.pairs) {
    const [from, to] = pair.split(">");
    out[pair] = request.points.map((p) => gcoord.transform([p[0], p[1]], gcoord[from], gcoord[to]));
  }
  process.stdout.write(JSON.stringify(out));
});
