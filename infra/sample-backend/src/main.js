// The sample backend's API: GET /health for HEALTHCHECKs and rollouts, GET / for a greeting that
// a developer edits to see hot reload (`pnpm start:dev` restarts on any change under src/).
const http = require("node:http");
const { greeting } = require("./greeting");

const port = Number(process.env.PORT || 8080);
const version = process.env.APP_VERSION || "dev";

const server = http.createServer((req, res) => {
  if (req.url === "/health") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`ok version=${version}\n`);
    return;
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ message: greeting(), version }) + "\n");
});

server.listen(port, "0.0.0.0", () => console.log(`sample backend ${version} on :${port}`));
// Exec-form CMD makes node PID 1: without a handler SIGTERM would wait for the kill timeout.
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
