package sqlstore

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/weave-sync/weave"
)

// An offset token is the position of the last record of a page in its sort
// order: "<sort letter><sort key>:<id>", base64url-encoded without padding
// (the spec asks for the urlsafe alphabet, and ids may hold any printable
// ASCII). The sort letter ties the token to the order it was made for.
type offset struct {
	key int64 // modified (newest, oldest) or sortindex (index)
	id  string
}

var sortLetters = [...]byte{weave.SortNewest: 'n', weave.SortOldest: 'o', weave.SortIndex: 'i'}

func encodeOffset(sort weave.Sort, last *weave.BSO) string {
	key := int64(last.Modified)
	if sort == weave.SortIndex {
		key = noSortIndex
		if last.SortIndex != nil {
			key = *last.SortIndex
		}
	}
	raw := make([]byte, 0, 24+len(last.ID))
	raw = append(raw, sortLetters[sort])
	raw = strconv.AppendInt(raw, key, 10)
	raw = append(raw, ':')
	raw = append(raw, last.ID...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeOffset parses a token and checks it against the query it resumes:
// same sort, and for the time orders a position inside newer/older (a token
// outside them was made for another query).
func decodeOffset(token string, q weave.Query) (offset, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 3 || raw[0] != sortLetters[q.Sort] {
		return offset{}, invalidOffset(token)
	}
	keyText, id, ok := strings.Cut(string(raw[1:]), ":")
	if !ok || !weave.ValidBSOID(id) {
		return offset{}, invalidOffset(token)
	}
	key, err := strconv.ParseInt(keyText, 10, 64)
	if err != nil {
		return offset{}, invalidOffset(token)
	}
	switch q.Sort {
	case weave.SortIndex:
		if key < noSortIndex || key > weave.MaxSortIndex {
			return offset{}, invalidOffset(token)
		}
	default:
		if key <= 0 || (q.Newer > 0 && key <= int64(q.Newer)) || (q.Older > 0 && key >= int64(q.Older)) {
			return offset{}, invalidOffset(token)
		}
	}
	return offset{key: key, id: id}, nil
}

func invalidOffset(token string) error {
	if len(token) > 40 {
		token = token[:40] + "…"
	}
	return fmt.Errorf("%w: %q", weave.ErrInvalidOffset, token)
}
