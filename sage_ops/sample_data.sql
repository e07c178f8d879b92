-- Sample schema and data for the embedded default: a small chat-style product database.
CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE conversations (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id),
    title       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE messages (
    id               bigserial PRIMARY KEY,
    conversation_id  bigint NOT NULL REFERENCES conversations(id),
    role             text NOT NULL CHECK (role IN ('user', 'assistant')),
    content          text NOT NULL,
    metadata         jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, created_at);

INSERT INTO users (email, name)
SELECT format('user%s@example.com', i), format('User %s', i) FROM generate_series(1, 50) AS i;

INSERT INTO conversations (user_id, title)
SELECT 1 + (i % 50), format('Conversation %s', i) FROM generate_series(1, 200) AS i;

INSERT INTO messages (conversation_id, role, content, metadata)
SELECT 1 + (i % 200),
       CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END,
       repeat(format('Message %s about deployments, backups and migrations. ', i), 1 + i % 5),
       jsonb_build_object('tokens', 20 + i % 400, 'model', 'sage-1', 'latency_ms', 100 + i % 900)
FROM generate_series(1, 2000) AS i;
