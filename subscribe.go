package taskwire

// Methods of the WebSocket transport (GET /ws). events.subscribe and
// events.unsubscribe are listed by rpc.discover but only work over a
// WebSocket: they need a connection to push events on. rpc.authenticate
// (a name JSON-RPC reserves for extensions, so not listed) is accepted as
// the first message of a connection only.
const (
	MethodEventsSubscribe   = "events.subscribe"
	MethodEventsUnsubscribe = "events.unsubscribe"
	// MethodEventsEvent is the notification the server sends for each
	// event of a subscription; its params are an EventNotification.
	MethodEventsEvent  = "events.event"
	MethodAuthenticate = "rpc.authenticate"
)

// SubscribeParams are the params of events.subscribe. Types and TaskID
// filter the events (empty: all); with AfterEventID the events the log
// still holds after that ID come first, then live ones, with no gap and no
// duplicate. Without it only events from now on arrive. Events the log no
// longer holds arrive as one EventGap event in their place.
type SubscribeParams struct {
	Types        []EventType `json:"types,omitempty" jsonschema:"maxItems=11,enum=task.created,enum=task.claimed,enum=task.updated,enum=task.completed,enum=task.assigned,enum=task.unassigned,enum=task.deleted,enum=task.requeued,enum=worker.registered,enum=worker.offline,enum=worker.unregistered"`
	TaskID       string      `json:"taskId,omitempty" jsonschema:"minLength=1,maxLength=128"`
	AfterEventID string      `json:"afterEventId,omitempty" jsonschema:"minLength=1,maxLength=64"`
}

// SubscribeResult is the result of events.subscribe: the id that every
// events.event notification of the subscription carries, and the position
// of the log its events follow. AfterEventID is the afterEventId given,
// else the newest event of the log, "0" when it has none; a client whose
// connection drops before the first event resubscribes with it as
// afterEventId and misses nothing, with no duplicate.
type SubscribeResult struct {
	Subscription string `json:"subscription"`
	AfterEventID string `json:"afterEventId"`
}

// UnsubscribeParams are the params of events.unsubscribe.
type UnsubscribeParams struct {
	Subscription string `json:"subscription" jsonschema:"minLength=1,maxLength=64"`
}

// UnsubscribeResult is the result of events.unsubscribe. No notification
// of the subscription follows its response.
type UnsubscribeResult struct {
	Unsubscribed bool `json:"unsubscribed"`
}

// EventNotification is the params of an events.event notification.
type EventNotification struct {
	Subscription string `json:"subscription"`
	Event        Event  `json:"event"`
}

// AuthenticateParams are the params of rpc.authenticate, the first message
// of a WebSocket connection that sent no Authorization header.
type AuthenticateParams struct {
	Token string `json:"token"`
}

// AuthenticateResult is the result of rpc.authenticate.
type AuthenticateResult struct {
	Authenticated bool `json:"authenticated"`
}
