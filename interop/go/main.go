// franz-go against ferrolog: produce and consume with every codec, idempotent by default.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

var passed int

func check(ok bool, format string, args ...any) {
	if !ok {
		fmt.Printf("FAILED: "+format+"\n", args...)
		os.Exit(1)
	}
	passed++
}

func main() {
	bootstrap := os.Args[1]
	if len(os.Args) > 2 && os.Args[2] == "scram" {
		scramRoundTrip(bootstrap, os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7])
		fmt.Printf("%d passed, 0 failed\n", passed)
		return
	}
	if len(os.Args) > 2 && os.Args[2] == "load" {
		seconds, _ := strconv.Atoi(os.Args[4])
		load(bootstrap, os.Args[3], seconds)
		fmt.Printf("%d passed, 0 failed\n", passed)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	check(err == nil, "admin client: %v", err)
	adm := kadm.NewClient(admin)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		topic := fmt.Sprintf("franz-%s-%d", name, time.Now().UnixNano())
		resp, err := adm.CreateTopics(ctx, 2, 1, nil, topic)
		check(err == nil && resp[topic].Err == nil, "create %s: %v %v", topic, err, resp[topic].Err)
		p, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic))
		check(err == nil, "producer: %v", err)
		var records []*kgo.Record
		for i := 0; i < 300; i++ {
			records = append(records, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i)),
				Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}})
		}
		results := p.ProduceSync(ctx, records...)
		check(results.FirstErr() == nil, "%s produce: %v", name, results.FirstErr())
		p.Close()
		c, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		check(err == nil, "consumer: %v", err)
		seen := map[string]bool{}
		deadline := time.Now().Add(20 * time.Second)
		for len(seen) < 300 && time.Now().Before(deadline) {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fetches := c.PollFetches(pctx)
			pcancel()
			fetches.EachRecord(func(r *kgo.Record) {
				check(string(r.Value) == "v"+string(r.Key)[1:], "%s: pair %s %s", name, r.Key, r.Value)
				check(len(r.Headers) == 1 && string(r.Headers[0].Value) == "x", "%s: header", name)
				seen[string(r.Value)] = true
			})
		}
		c.Close()
		check(len(seen) == 300, "%s: consumed %d of 300", name, len(seen))
	}
	groupConsumer(ctx, bootstrap, adm)
	admin.Close()
	fmt.Printf("%d passed, 0 failed\n", passed)
}

// groupConsumer: a franz-go consumer group reads a topic, commits, and the committed offsets are
// visible through the admin API; a second run of the group reads nothing new.
func groupConsumer(ctx context.Context, bootstrap string, adm *kadm.Client) {
	topic := fmt.Sprintf("franz-group-%d", time.Now().UnixNano())
	group := topic + "-g"
	resp, err := adm.CreateTopics(ctx, 3, 1, nil, topic)
	check(err == nil && resp[topic].Err == nil, "create %s: %v", topic, err)
	p, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic))
	check(err == nil, "producer: %v", err)
	var records []*kgo.Record
	for i := 0; i < 60; i++ {
		records = append(records, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	check(p.ProduceSync(ctx, records...).FirstErr() == nil, "group produce")
	p.Close()
	consume := func(wait time.Duration) int {
		c, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		check(err == nil, "group consumer: %v", err)
		defer c.Close()
		seen := 0
		deadline := time.Now().Add(wait)
		for seen < 60 && time.Now().Before(deadline) {
			pctx, pcancel := context.WithTimeout(ctx, time.Second)
			fetches := c.PollFetches(pctx)
			pcancel()
			seen += fetches.NumRecords()
		}
		check(c.CommitUncommittedOffsets(ctx) == nil, "commit")
		return seen
	}
	check(consume(15*time.Second) == 60, "group read all 60")
	offsets, err := adm.FetchOffsets(ctx, group)
	check(err == nil, "fetch offsets: %v", err)
	total := int64(0)
	offsets.Each(func(o kadm.OffsetResponse) { total += o.At })
	check(total == 60, "committed offsets sum to 60, got %d", total)
	check(consume(3*time.Second) == 0, "nothing re-read after the commit")
}

// scramRoundTrip: over SASL_PLAINTEXT with SCRAM (mechanism SCRAM-SHA-256 or -512), produce 100
// records to `topic` and read them back; a wrong password fails to connect; writing to `denied`
// (a topic the user has no ACL for) fails with TOPIC_AUTHORIZATION_FAILED.
func scramRoundTrip(bootstrap, mechanism, user, password, topic, denied string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mech := func(pass string) sasl.Mechanism {
		auth := scram.Auth{User: user, Pass: pass}
		if mechanism == "SCRAM-SHA-512" {
			return auth.AsSha512Mechanism()
		}
		return auth.AsSha256Mechanism()
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.SASL(mech(password)), kgo.DefaultProduceTopic(topic))
	check(err == nil, "producer: %v", err)
	var records []*kgo.Record
	for i := 0; i < 100; i++ {
		records = append(records, &kgo.Record{Value: []byte(fmt.Sprintf("s%d", i))})
	}
	results := p.ProduceSync(ctx, records...)
	check(results.FirstErr() == nil, "scram produce: %v", results.FirstErr())
	err = p.ProduceSync(ctx, &kgo.Record{Topic: denied, Value: []byte("x")}).FirstErr()
	check(errors.Is(err, kerr.TopicAuthorizationFailed), "produce to %s: %v", denied, err)
	p.Close()
	c, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.SASL(mech(password)), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	check(err == nil, "consumer: %v", err)
	seen := 0
	for seen < 100 && ctx.Err() == nil {
		fetches := c.PollFetches(ctx)
		check(fetches.Err0() == nil || ctx.Err() != nil, "scram fetch: %v", fetches.Err0())
		seen += fetches.NumRecords()
	}
	check(seen == 100, "scram consumed %d of 100", seen)
	c.Close()
	bad, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.SASL(mech(password+"-wrong")))
	check(err == nil, "client: %v", err)
	err = bad.Ping(ctx)
	check(err != nil && strings.Contains(err.Error(), "SASL_AUTHENTICATION_FAILED"), "a wrong password: %v", err)
	bad.Close()
}

// load: idempotent acks=all produce for `seconds` while the test changes leaders, then every
// acknowledged value must be in the topic exactly once.
func load(bootstrap, topic string, seconds int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+120)*time.Second)
	defer cancel()
	seeds := strings.Split(bootstrap, ",")
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordDeliveryTimeout(120 * time.Second)}
	if os.Getenv("KGO_LOG") != "" {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)))
	}
	p, err := kgo.NewClient(opts...)
	check(err == nil, "producer: %v", err)
	var mu sync.Mutex
	acked := map[string]bool{}
	var firstErr error
	end := time.Now().Add(time.Duration(seconds) * time.Second)
	sent := 0
	for time.Now().Before(end) {
		v := fmt.Sprintf("g%d", sent)
		sent++
		p.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			} else if err == nil {
				acked[v] = true
			}
		})
		if sent%200 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	check(p.Flush(ctx) == nil, "flush")
	p.Close()
	check(firstErr == nil, "no send failed: %v", firstErr)
	check(len(acked) > 1000, "acknowledged: %d", len(acked))
	c, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	check(err == nil, "consumer: %v", err)
	seen := map[string]bool{}
	dups := 0
	idle := time.Now()
	for time.Since(idle) < 5*time.Second {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fetches := c.PollFetches(pctx)
		pcancel()
		fetches.EachRecord(func(r *kgo.Record) {
			idle = time.Now()
			v := string(r.Value)
			if len(v) > 0 && v[0] == 'g' {
				if seen[v] {
					dups++
				}
				seen[v] = true
			}
		})
	}
	c.Close()
	lost := 0
	for v := range acked {
		if !seen[v] {
			lost++
		}
	}
	check(lost == 0, "%d acknowledged records lost", lost)
	check(dups == 0, "%d duplicates", dups)
	fmt.Printf("acked %d of %d\n", len(acked), sent)
}
