-- Keys the store creates for itself, by name (e.g. `plan`: the HMAC key that binds a saved
-- plan file to its content). Hex text so that both dialects read and write it alike.
CREATE TABLE store_keys (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
