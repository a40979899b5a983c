package legacy_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestParentIDWire: the deprecated WBO fields parentid and predecessorid
// are stored, shown when set (and only then), kept by writes without them,
// cleared by "", and their filters select on GET and on DELETE together
// with the other filters, on every database.
func TestParentIDWire(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			srv := newServer(t, b, serverOpts{signup: "open"})
			c := newUser(t, srv, "parents@example.com")
			st := func(method, path, body string) resp {
				t.Helper()
				r := c.storage(method, path, body, nil)
				if r.status != 200 {
					t.Fatalf("%s %s = %d %q", method, path, r.status, r.body)
				}
				return r
			}
			ids := func(path string) []string {
				t.Helper()
				var got []string
				if err := json.Unmarshal([]byte(st("GET", path, "").body), &got); err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				slices.Sort(got)
				return got
			}
			wantIDs := func(path string, want ...string) {
				t.Helper()
				if got := ids(path); !slices.Equal(got, want) {
					t.Fatalf("GET %s = %q, want %q", path, got, want)
				}
			}

			st("POST", "storage/bookmarks", `[
				{"id":"a","payload":"A","parentid":"root"},
				{"id":"b","payload":"B","parentid":"root","predecessorid":"a","sortindex":5},
				{"id":"c","payload":"C","parentid":"menu","predecessorid":"b"},
				{"id":"d","payload":"D","predecessorid":42},
				{"id":"e","payload":"E","parentid":null}
			]`)
			st("PUT", "storage/bookmarks/f", `{"payload":"F","parentid":"menu","predecessorid":"c"}`)

			// Shown when set, next to the id; absent when not.
			r := st("GET", "storage/bookmarks/b", "")
			if want := `{"id":"b","parentid":"root","predecessorid":"a","modified":`; !strings.HasPrefix(r.body, want) ||
				!strings.HasSuffix(r.body, `,"sortindex":5,"payload":"B"}`) {
				t.Fatalf("GET b = %q", r.body)
			}
			if r := st("GET", "storage/bookmarks/e", ""); strings.Contains(r.body, "parentid") || strings.Contains(r.body, "predecessorid") {
				t.Fatalf("GET e = %q", r.body)
			}
			var full []map[string]any
			json.Unmarshal([]byte(st("GET", "storage/bookmarks?full=1&sort=oldest&parentid=menu", "").body), &full)
			if len(full) != 2 || full[0]["predecessorid"] != "b" || full[1]["predecessorid"] != "c" || full[1]["parentid"] != "menu" {
				t.Fatalf("full=1&parentid=menu = %v", full)
			}
			// The newline format carries them too.
			nl := c.storage("GET", "storage/bookmarks?full=1&predecessorid=42", "", map[string]string{"Accept": "application/newlines"})
			if !strings.HasPrefix(nl.body, `{"id":"d","predecessorid":"42",`) || strings.Count(nl.body, "\n") != 1 {
				t.Fatalf("newlines predecessorid=42 = %q", nl.body)
			}

			// Filters, alone and with the others.
			wantIDs("storage/bookmarks?parentid=root", "a", "b")
			wantIDs("storage/bookmarks?predecessorid=b", "c")
			wantIDs("storage/bookmarks?parentid=menu&predecessorid=c", "f")
			wantIDs("storage/bookmarks?parentid=nowhere")
			wantIDs("storage/bookmarks?parentid=")
			wantIDs("storage/bookmarks?parentid=%00")
			wantIDs("storage/bookmarks?parentid=%ff")
			wantIDs("storage/bookmarks?parentid=" + strings.Repeat("x", 65))
			wantIDs("storage/bookmarks?parentid=root&ids=b,c", "b")
			wantIDs("storage/bookmarks?parentid=root&index_above=1", "b")
			wantIDs("storage/bookmarks?parentid=menu&sort=oldest&limit=1", "c")
			wantIDs("storage/bookmarks?parentid=menu&sort=oldest&limit=1&offset=1", "f")

			// Writes without the fields keep them; "" clears.
			st("PUT", "storage/bookmarks/a", `{"payload":"A2"}`)
			st("POST", "storage/bookmarks", `[{"id":"c","sortindex":1},{"id":"b","parentid":"","predecessorid":"x"}]`)
			wantIDs("storage/bookmarks?parentid=root", "a")
			wantIDs("storage/bookmarks?parentid=menu", "c", "f")
			wantIDs("storage/bookmarks?predecessorid=x", "b")
			if r := st("GET", "storage/bookmarks/b", ""); strings.Contains(r.body, "parentid") {
				t.Fatalf("cleared parentid still shown: %q", r.body)
			}

			// Invalid values: the record fails as server-storage words it.
			var res struct {
				Success []string            `json:"success"`
				Failed  map[string][]string `json:"failed"`
			}
			r = st("POST", "storage/bookmarks", fmt.Sprintf(`[{"id":"g","parentid":%q},{"id":"h","predecessorid":[1]},{"id":"i","parentid":"a\u0000b"},{"id":"j","parentid":"ok"}]`, strings.Repeat("p", 65)))
			if err := json.Unmarshal([]byte(r.body), &res); err != nil || fmt.Sprint(res.Success) != "[j]" ||
				fmt.Sprint(res.Failed["g"]) != "[invalid parentid]" || fmt.Sprint(res.Failed["h"]) != "[invalid predecessorid]" ||
				fmt.Sprint(res.Failed["i"]) != "[invalid parentid]" {
				t.Fatalf("invalid parentids = %q", r.body)
			}
			if r := c.storage("PUT", "storage/bookmarks/k", fmt.Sprintf(`{"parentid":%q}`, strings.Repeat("p", 65)), nil); r.status != 400 || r.body != "8" {
				t.Fatalf("PUT with a long parentid = %d %q", r.status, r.body)
			}
			long := strings.Repeat("p", 64)
			st("PUT", "storage/bookmarks/k", fmt.Sprintf(`{"payload":"K","parentid":%q}`, long))
			wantIDs("storage/bookmarks?parentid="+long, "k")

			// DELETE applies them like every filter (server-storage).
			st("DELETE", "storage/bookmarks?parentid=menu&predecessorid=c", "")
			wantIDs("storage/bookmarks", "a", "b", "c", "d", "e", "j", "k")
			st("DELETE", "storage/bookmarks?parentid=nowhere", "")
			st("DELETE", "storage/bookmarks?parentid=%00", "")
			wantIDs("storage/bookmarks", "a", "b", "c", "d", "e", "j", "k")
			st("DELETE", "storage/bookmarks?predecessorid=x", "")
			st("DELETE", "storage/bookmarks?parentid=root&ids=a,c", "")
			wantIDs("storage/bookmarks", "c", "d", "e", "j", "k")
			st("DELETE", "storage/bookmarks?parentid=menu&newer=1", "")
			wantIDs("storage/bookmarks", "d", "e", "j", "k")
		})
	}
}
