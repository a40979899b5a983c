-- Token server database (schema set "tokens"), version 1: services, storage
-- nodes and user records. The contract is at the top of sqlstore/tokendb.go.
-- Text that is looked up or unique compares bytewise on every backend. A
-- template shared by every backend: see sqlstore/ddl.go.

{{.Table "token_services"}} (
	id      {{.Identity "INTEGER"}},
	service VARCHAR(30){{.Bytewise}} NOT NULL,
	pattern VARCHAR(128) NOT NULL
	{{- .Unique "token_services_service" "service"}}
){{.End}};

INSERT INTO token_services (service, pattern) VALUES ('sync-1.5', '{node}/1.5/{uid}'){{.KeepExisting "service"}};

{{.Table "token_nodes"}} (
	id           {{.Identity "BIGINT"}},
	service      INTEGER NOT NULL,
	node         VARCHAR(255){{.Bytewise}} NOT NULL,
	available    INTEGER NOT NULL DEFAULT 0,
	current_load INTEGER NOT NULL DEFAULT 0,
	capacity     INTEGER NOT NULL DEFAULT 0,
	state        VARCHAR(16) NOT NULL DEFAULT 'up',
	retry_after  INTEGER NOT NULL DEFAULT 0,
	backoff      INTEGER NOT NULL DEFAULT 0,
	database_url VARCHAR(1024) NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL
	{{- .Unique "token_nodes_service_node" "service, node"}}
){{.End}};

-- Identity: a uid is never reused, even after the newest record is purged,
-- so a new user can never inherit an old user's storage.
{{.Table "token_users"}} (
	uid             {{.Identity "BIGINT"}},
	service         INTEGER NOT NULL,
	email           VARCHAR(255){{.Bytewise}} NOT NULL,
	generation      BIGINT NOT NULL,
	client_state    VARCHAR(32) NOT NULL,
	keys_changed_at BIGINT,
	created_at      BIGINT NOT NULL,
	replaced_at     BIGINT,
	nodeid          BIGINT NOT NULL
	{{- .Index "token_users_lookup" "email, service, created_at"}}
	{{- .Index "token_users_replaced" "service, replaced_at"}}
	{{- .Index "token_users_node" "nodeid"}}
){{.End}};
