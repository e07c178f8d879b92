// `pnpm dev --host 0.0.0.0`: serve src/ on :5173, reading each file per request (hot reload).
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");

const args = process.argv.slice(2);
const host = args.includes("--host") ? args[args.indexOf("--host") + 1] : "127.0.0.1";
const root = path.join(__dirname, "src");
const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };

http
  .createServer((req, res) => {
    const name = req.url === "/" ? "index.html" : path.normalize(req.url).replace(/^\/+/, "");
    fs.readFile(path.join(root, name), (err, body) => {
      if (err) {
        res.writeHead(404).end("not found\n");
        return;
      }
      res.writeHead(200, { "content-type": types[path.extname(name)] || "text/plain" });
      res.end(body.toString().replaceAll("%VITE_API_URL%", process.env.VITE_API_URL || ""));
    });
  })
  .listen(5173, host, () => console.log(`frontend stand-in on http://${host}:5173`));
