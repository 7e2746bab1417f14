package bridge

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/kafka-go"

	"github.com/wikiflow/wikiflow/internal/event"
	"github.com/wikiflow/wikiflow/internal/wire"
)

// partition is one Kafka partition with its offset range at pipeline start.
type partition struct {
	id          int
	first, last int64 // first offset kept, high watermark
}

// partitions lists the topic's partitions and their offset ranges.
func (b *Bridge) partitions(ctx context.Context, kc *kafka.Client) ([]partition, error) {
	topic := b.cfg.Kafka.Topic
	md, err := kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata of %s: %w", topic, err)
	}
	var parts []partition
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("kafka topic %s: %w", topic, t.Error)
		}
		for _, p := range t.Partitions {
			parts = append(parts, partition{id: p.ID})
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("kafka topic %s has no partitions (does it exist?)", topic)
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p.id), kafka.LastOffsetOf(p.id))
	}
	resp, err := kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("kafka offsets of %s: %w", topic, err)
	}
	got := map[int]kafka.PartitionOffsets{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("kafka offsets of %s partition %d: %w", topic, po.Partition, po.Error)
		}
		got[po.Partition] = po
	}
	for i := range parts {
		po, ok := got[parts[i].id]
		if !ok {
			return nil, fmt.Errorf("kafka offsets of %s partition %d: no answer", topic, parts[i].id)
		}
		parts[i].first, parts[i].last = po.FirstOffset, po.LastOffset
	}
	return parts, nil
}

// record is one Kafka record on its way to the stream.
type record struct {
	partition int
	offset    int64
	// skip marks a record that is not published (a canary or an invalid event).
	skip bool
	// id is the Nats-Msg-Id (meta.id).
	id string
	// msg is the message to publish; the publisher adds the expectations to its
	// headers.
	msg nats.Msg
	// values holds the header values of msg, so that they take no allocation
	// of their own.
	values [headerValues]string
}

// Indexes into record.values.
const (
	hvMsgID = iota
	hvTopic
	hvPartition
	hvOffset
	hvBridge
	hvReceived
	hvExpectedSeq
	hvExpectedID
	headerValues
)

// setHeader sets the header key of r.msg to the single value val, stored at
// r.values[i].
func (r *record) setHeader(i int, key, val string) {
	r.values[i] = val
	r.msg.Header[key] = r.values[i : i+1 : i+1]
}

// build turns a Kafka record into the message to publish. The payload is the raw
// value; the headers carry meta.id, the Kafka position, the writer and the ingest
// time: only what a later hop reads (every header costs the server a scan per
// lookup and the consumers a map entry per message). The subject carries the wiki
// and type; consumers that need more decode the payload.
func (b *Bridge) build(m kafka.Message) *record {
	r := &record{partition: m.Partition, offset: m.Offset}
	subject, id, err := b.route(m)
	if err != nil {
		r.skip = true
		if errors.Is(err, event.ErrCanary) {
			b.stats.Canaries.Add(1)
			return r
		}
		b.stats.Invalid.Add(1)
		b.log.Warn("skipping a Kafka record that is not a valid event",
			"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "bytes", len(m.Value), "err", err)
		return r
	}
	r.id = id
	r.msg = nats.Msg{
		Subject: subject,
		Data:    m.Value,
		Header:  make(nats.Header, headerValues),
	}
	r.setHeader(hvMsgID, jetstream.MsgIDHeader, r.id)
	r.setHeader(hvTopic, wire.HeaderKafkaTopic, m.Topic)
	r.setHeader(hvPartition, wire.HeaderKafkaPartition, strconv.Itoa(m.Partition))
	r.setHeader(hvOffset, wire.HeaderKafkaOffset, strconv.FormatInt(m.Offset, 10))
	r.setHeader(hvBridge, HeaderBridge, b.instance)
	if recv := kafkaHeader(m, wire.HeaderReceived); recv != "" {
		r.setHeader(hvReceived, wire.HeaderNATSReceived, recv)
	}
	return r
}

// route returns the subject and meta.id of a Kafka record. Ingest parsed and
// validated every event it wrote and names both in headers; with both there, a
// well-formed subject and a value within event.MaxSize, route takes them as they
// are. Otherwise it parses the value (event.ParseHead), which also refuses values
// over the size limit, and takes meta.id from the header when there is one.
func (b *Bridge) route(m kafka.Message) (subject, id string, err error) {
	id = kafkaHeader(m, wire.HeaderMetaID)
	if s := headerBytes(m, wire.HeaderSubject); s != nil && id != "" && len(m.Value) <= event.MaxSize {
		if event.ValidSubject(wire.SubjectPrefix, s) {
			return string(s), id, nil
		}
		b.badSubject(m, s)
	}
	h, err := event.ParseHead(m.Value)
	if err != nil {
		return "", "", err
	}
	if id == "" {
		id = h.ID
	}
	return h.Subject(wire.SubjectPrefix), id, nil
}

// badSubject notes a record whose subject header is not a well-formed subject
// (it is parsed instead), logging the 1st, 2nd, 4th, 8th... such record.
func (b *Bridge) badSubject(m kafka.Message, s []byte) {
	n := b.badSubjects.Add(1)
	if n&(n-1) == 0 {
		b.log.Debug("ignoring a malformed subject header, parsing the record",
			"topic", m.Topic, "partition", m.Partition, "offset", m.Offset,
			"header", wire.HeaderSubject, "value", string(s), "count", n)
	}
}

// kafkaHeader returns the value of the last header named key ("" when absent).
func kafkaHeader(m kafka.Message, key string) string {
	return string(headerBytes(m, key))
}

// headerBytes returns the value of the last header named key (nil when absent).
func headerBytes(m kafka.Message, key string) []byte {
	for i := len(m.Headers) - 1; i >= 0; i-- {
		if m.Headers[i].Key == key {
			return m.Headers[i].Value
		}
	}
	return nil
}
