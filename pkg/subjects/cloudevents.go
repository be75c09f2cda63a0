package subjects

// Header names of CloudEvents on trigger subjects, per the CloudEvents NATS
// protocol binding: in binary mode every context attribute travels as a
// header named "ce-" and the attribute's name; in structured mode the whole
// CloudEvent is the body and Content-Type says so. Header names are
// case-insensitive here, as the binding requires.
const (
	// HeaderCESpecVersion marks a binary-mode CloudEvent: its presence alone
	// takes the message off the plain event's path. Its value must be "1.0".
	HeaderCESpecVersion = "ce-specversion"
	// HeaderCEID is the CloudEvent's id: the event's id.
	HeaderCEID = "ce-id"
	// HeaderCESource is the CloudEvent's source, a URI-reference naming the
	// publisher; required, not interpreted.
	HeaderCESource = "ce-source"
	// HeaderCEType is the CloudEvent's type: the subject it is published on,
	// <prefix>.<TYPE>.<OPTION>.
	HeaderCEType = "ce-type"
	// HeaderCETime is the CloudEvent's time, RFC 3339: the event's timeStamp.
	HeaderCETime = "ce-time"
	// HeaderCEDataContentType is the media type of a binary-mode
	// CloudEvent's data (the body); it must be JSON.
	HeaderCEDataContentType = "ce-datacontenttype"
	// HeaderContentType set to [MediaCloudEvents] marks a structured-mode
	// CloudEvent.
	HeaderContentType = "Content-Type"
)

// MediaCloudEvents is the media type of a structured CloudEvent in the JSON
// event format.
const MediaCloudEvents = "application/cloudevents+json"
