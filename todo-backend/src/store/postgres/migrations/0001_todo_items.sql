-- The items table. An identity column takes its ids from a sequence, which
-- never hands a value out twice and is not reset by deleting rows: ids are
-- never reused, not even after "delete all", and instances sharing the
-- database never collide. `name` is UTF-8 in BYTEA because TEXT cannot hold
-- U+0000 (read it with convert_from(name, 'UTF8')).
CREATE TABLE todo_items (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    owner_id    TEXT    NOT NULL,
    name        BYTEA   NOT NULL,
    is_complete BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX todo_items_by_owner ON todo_items (tenant_id, owner_id, id);
