package sqlstore

import "context"

// UserIDs returns the uids of every user with data in this store, in
// ascending order (for operator tools such as cache warm-up).
func (s *Store) UserIDs(ctx context.Context) ([]int64, error) {
	var uids []int64
	rows, err := s.db.Read.QueryContext(ctx, `SELECT uid FROM user_storage ORDER BY uid`)
	if err != nil {
		return nil, s.db.Classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var uid int64
		if err := rows.Scan(&uid); err != nil {
			return nil, s.db.Classify(err)
		}
		uids = append(uids, uid)
	}
	return uids, s.db.Classify(rows.Err())
}
