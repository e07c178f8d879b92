// Prisma 6.19 runs migrations through its Wasm schema engine and this driver adapter, so no native
// engine is downloaded (PRISMA_SCHEMA_ENGINE_BINARY / PRISMA_QUERY_ENGINE_LIBRARY point at a stub
// in the image). Through the adapter a migration's statements run one by one, outside a
// transaction: a failing statement leaves the earlier ones applied.
import path from "node:path";
import { PrismaPg } from "@prisma/adapter-pg";
import { defineConfig } from "prisma/config";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: path.join("prisma", "schema.prisma"),
  migrations: { path: path.join("prisma", "migrations") },
  async adapter() {
    return new PrismaPg({ connectionString: process.env.DATABASE_URL });
  },
});
