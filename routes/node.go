package routes

import (
	"net/http"

	weavehttp "github.com/weave-sync/weave/http"
)

// NodeFront is a node's table (NodeHandler) with its storage API's
// readiness: the front end a fleet.NodeSet serves, whose heartbeats turn
// 503 when the node is not ready.
type NodeFront struct {
	http.Handler
	api *weavehttp.Server
}

// NewNodeFront returns the front end of node n.
func NewNodeFront(n Node) NodeFront { return NodeFront{Handler: NodeHandler(n), api: n.API} }

// SetReady sets the readiness its heartbeats report.
func (f NodeFront) SetReady(ready bool) { f.api.SetReady(ready) }
