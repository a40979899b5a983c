package push

import (
	"bytes"
	"testing"
)

func TestEndpointKeys(t *testing.T) {
	if _, err := EndpointKeys(nil); err == nil {
		t.Error("EndpointKeys(nil): no error")
	}
	keys, err := EndpointKeys([]string{"new", "old"})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EndpointKeys([]string{"old"})
	if len(keys) != 2 || len(keys[0]) != 32 || bytes.Equal(keys[0], keys[1]) || !bytes.Equal(keys[1], again[0]) {
		t.Errorf("EndpointKeys: %x; want one 32-byte key per secret, each depending only on its secret", keys)
	}
}
