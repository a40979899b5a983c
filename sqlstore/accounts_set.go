package sqlstore

// SetAccounts is the schema set of the built-in accounts service (package
// accounts): accounts, their tokens and grants, and OAuth signing keys.
const SetAccounts = "accounts"
