// Package event holds the wire types of triggerbus: the event payload every
// trigger point publishes (the shape of FDL's p table) and the decision a
// worker returns for a PRE trigger.
//
// [Decode] checks an event against the subject it arrived on and fills the
// fields the publisher may leave out (id, timeStamp, triggerType,
// triggerOption). The object of the event, Input, stays raw JSON until a
// function needs it.
package event
