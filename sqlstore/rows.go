package sqlstore

import "context"

// readAll runs query on the read pool and scans every row it returns with
// scan; errors come classified.
func readAll[T any](ctx context.Context, db *DB, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.Read.QueryContext(ctx, db.Q(query), args...)
	if err != nil {
		return nil, db.Classify(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, db.Classify(err)
		}
		out = append(out, v)
	}
	return out, db.Classify(rows.Err())
}
