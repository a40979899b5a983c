package legacy

import "testing"

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		path, prefix string
		ok           bool
		user, kind   string
		rest         int
	}{
		{"/1.1/joe/info/collections", "", true, "joe", "info", 1},
		{"/1.0/joe/storage", "", true, "joe", "storage", 0},
		{"/1/joe/storage/bookmarks/x", "", true, "joe", "storage", 2},
		{"/sync/1.1/joe/storage/tabs", "/sync", true, "joe", "storage", 1},
		// A proxy that strips the prefix.
		{"/1.1/joe/storage/tabs", "/sync", true, "joe", "storage", 1},
		// The token server and 1.5 are not 1.1.
		{"/1.0/sync/1.5", "", false, "", "", 0},
		{"/1.5/42/storage/tabs", "", false, "", "", 0},
		{"/1.1/joe", "", false, "", "", 0},
		{"/1.1/jo$e/info/collections", "", false, "", "", 0},
		{"/syncx/1.1/joe/info/collections", "/sync", false, "", "", 0},
	} {
		r, ok := parseRoute(tc.path, tc.prefix)
		if ok != tc.ok || r.user != tc.user || r.kind != tc.kind || len(r.rest) != tc.rest {
			t.Errorf("parseRoute(%q, %q) = %+v, %v", tc.path, tc.prefix, r, ok)
		}
	}
}
