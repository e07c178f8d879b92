// Prisma Client through the pg driver adapter (no query engine binary), created on first use so
// the API starts, and answers /health, without a database.
let prisma;

exports.databaseTime = async () => {
  if (!process.env.DATABASE_URL) throw new Error("DATABASE_URL is not set");
  if (!prisma) {
    const { PrismaClient } = require("@prisma/client");
    const { PrismaPg } = require("@prisma/adapter-pg");
    prisma = new PrismaClient({
      adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }),
    });
  }
  const [row] = await prisma.$queryRaw`SELECT now() AS now`;
  return row.now;
};
