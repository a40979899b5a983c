-- Built-in accounts (schema set "accounts"), used only with
-- `weave serve --accounts`. Keys and hashes are lower-case hex; times are
-- milliseconds since the epoch. The contract is at the top of
-- sqlstore/accounts.go. A template shared by every backend: see
-- sqlstore/ddl.go.

{{.Table "accounts"}} (
	uid          CHAR(32) NOT NULL PRIMARY KEY,
	norm_email   VARCHAR(255){{.Bytewise}} NOT NULL UNIQUE,
	email        VARCHAR(255) NOT NULL,
	auth_salt    CHAR(64) NOT NULL,
	verify_hash  CHAR(64) NOT NULL,
	scrypt_n     INTEGER NOT NULL,
	ka           CHAR(64) NOT NULL,
	wrap_wrap_kb CHAR(64) NOT NULL,
	created_at   BIGINT NOT NULL,
	verifier_set BIGINT NOT NULL,
	keys_changed BIGINT NOT NULL,
	locale       VARCHAR(255) NOT NULL DEFAULT ''
){{.End}};

{{.Table "accounts_tokens"}} (
	id         CHAR(64) NOT NULL PRIMARY KEY,
	kind       VARCHAR(16) NOT NULL,
	uid        CHAR(32) NOT NULL,
	auth_key   VARCHAR(64) NOT NULL DEFAULT '',
	data       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL DEFAULT 0,
	last_used  BIGINT NOT NULL DEFAULT 0
	{{- .Index "accounts_tokens_uid" "uid, kind"}}
	{{- .Index "accounts_tokens_expiry" "expires_at"}}
){{.End}};

{{.Table "accounts_keys"}} (
	kid         VARCHAR(64) NOT NULL PRIMARY KEY,
	private_pem TEXT NOT NULL,
	created_at  BIGINT NOT NULL
){{.End}};
