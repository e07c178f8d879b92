// The sample backend's API: GET /health for HEALTHCHECKs and rollouts, GET /db for PostgreSQL's
// time through Prisma Client, GET / for a greeting that a developer edits to see hot reload
// (`pnpm start:dev` restarts on any change under src/).
const http = require("node:http");
const { databaseTime } = require("./db");
const { greeting } = require("./greeting");

const port = Number(process.env.PORT || 8080);
const version = process.env.APP_VERSION || "dev";

const server = http.createServer((req, res) => {
  if (req.url === "/health") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`ok version=${version}\n`);
    return;
  }
  if (req.url === "/db") {
    databaseTime().then(
      (now) => reply(res, 200, { now }),
      (error) => reply(res, 503, { error: error.message }),
    );
    return;
  }
  reply(res, 200, { message: greeting(), version });
});

function reply(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body) + "\n");
}

server.listen(port, "0.0.0.0", () => console.log(`sample backend ${version} on :${port}`));
// Exec-form CMD makes node PID 1: without a handler SIGTERM would wait for the kill timeout.
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
