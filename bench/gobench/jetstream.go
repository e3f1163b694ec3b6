// JetStream modes of gobench (-js), with nats.go's JetStream API:
//
//	-js syncpub   -np publishers, each js.Publish waits for its PubAck;
//	-js asyncpub  -np publishers with js.PublishAsync, at most -window PubAcks in flight
//	              (PublishAsyncMaxPending), then PublishAsyncComplete;
//	-js consume   -ns subscribers share one durable pull consumer (explicit acks): each
//	              Fetch(-batch) and Ack()s every message until the -n stored messages are in.
//
// Unless -bind, the driver defines the stream (-stream, -storage, subjects [-subject], limits
// retention, discard new, -maxbytes: the settings natscli's `nats bench --js` uses) and purges
// it first. Checks: after publishing, the stream must hold exactly the messages published
// (every PubAck was positive); after consuming, every subscriber got its share and the
// consumer has nothing pending and nothing left to deliver. A failed check is FAILED.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/bench"
)

func runJetStream() int {
	mode := *jsMode
	switch mode {
	case "syncpub", "asyncpub":
		if *numPubs < 1 {
			fatal("-js %s needs -np >= 1", mode)
		}
	case "consume":
		if *numSubs < 1 {
			fatal("-js consume needs -ns >= 1")
		}
	default:
		fatal("unknown -js mode %q (syncpub, asyncpub, consume)", mode)
	}
	storage := nats.FileStorage
	switch *jsStorage {
	case "file":
	case "memory":
		storage = nats.MemoryStorage
	default:
		fatal("unknown -storage %q (file, memory)", *jsStorage)
	}
	fmt.Printf("gobench (nats.go %s): JetStream %s, stream=%s, storage=%s, subject=%s, msgs=%s, size=%d, pubs=%d, subs=%d, window=%d, batch=%d, url=%s\n",
		nats.Version, mode, *jsStream, *jsStorage, *subject, commas(int64(*numMsgs)), *msgSize, *numPubs, *numSubs, *jsWindow, *jsBatch, *urls)

	admin, err := connect(*clientName+"-admin", *pubURL)
	if err != nil {
		fatal("%v", err)
	}
	defer admin.nc.Close()
	js, err := admin.nc.JetStream(nats.MaxWait(*jsTimeout))
	if err != nil {
		fatal("JetStream context: %v", err)
	}
	if !*jsNoDefine {
		_, err = js.AddStream(&nats.StreamConfig{Name: *jsStream, Subjects: []string{*subject},
			Retention: nats.LimitsPolicy, Discard: nats.DiscardNew, Storage: storage, Replicas: 1, MaxBytes: *jsMaxBytes})
		if err != nil {
			fatal("defining stream %s: %v", *jsStream, err)
		}
		if err := js.PurgeStream(*jsStream); err != nil {
			fatal("purging stream %s: %v", *jsStream, err)
		}
	}
	before, err := js.StreamInfo(*jsStream)
	if err != nil {
		fatal("stream info %s: %v", *jsStream, err)
	}
	if mode == "consume" {
		return jsConsume(js, before)
	}
	return jsPublish(js, before)
}

func jsPublish(js nats.JetStreamContext, before *nats.StreamInfo) int {
	syncPub := *jsMode == "syncpub"
	pubs := make([]*client, 0, *numPubs)
	for i := 0; i < *numPubs; i++ {
		c, err := connect(fmt.Sprintf("%s-pub-%d", *clientName, i+1), *pubURL)
		if err != nil {
			fatal("%v", err)
		}
		defer c.nc.Close()
		pubs = append(pubs, c)
	}
	bm := bench.NewBenchmark("NATS", 0, len(pubs))
	shares := bench.MsgsPerClient(*numMsgs, len(pubs))
	var acked, failed atomic.Int64
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, c := range pubs {
		opts := []nats.JSOpt{nats.MaxWait(*jsTimeout)}
		if !syncPub {
			opts = append(opts, nats.PublishAsyncMaxPending(*jsWindow),
				nats.PublishAsyncErrHandler(func(_ nats.JetStream, m *nats.Msg, err error) {
					if failed.Add(1) <= 10 {
						events.add("async publish failed: %v", err)
					}
				}))
		}
		pjs, err := c.nc.JetStream(opts...)
		if err != nil {
			fatal("%s: JetStream context: %v", c.name, err)
		}
		wg.Add(1)
		go func(share int, c *client, pjs nats.JetStreamContext) {
			defer wg.Done()
			payload := make([]byte, *msgSize)
			<-gate
			start := time.Now()
			for n := 0; n < share; n++ {
				if syncPub {
					if _, err := pjs.Publish(*subject, payload); err != nil {
						if failed.Add(1) <= 10 {
							events.add("%s: publish #%d failed: %v", c.name, n+1, err)
						}
						if errors.Is(err, nats.ErrConnectionClosed) {
							break
						}
						continue
					}
					acked.Add(1)
				} else if _, err := pjs.PublishAsync(*subject, payload); err != nil {
					if failed.Add(1) <= 10 {
						events.add("%s: PublishAsync #%d failed: %v", c.name, n+1, err)
					}
					if errors.Is(err, nats.ErrConnectionClosed) {
						break
					}
				}
			}
			if !syncPub {
				select {
				case <-pjs.PublishAsyncComplete():
				case <-time.After(*jsTimeout):
					events.add("%s: %d PubAcks still pending %s after the last publish", c.name, pjs.PublishAsyncPending(), *jsTimeout)
					failed.Add(int64(pjs.PublishAsyncPending()))
				}
			}
			if err := c.nc.FlushTimeout(60 * time.Second); err != nil {
				events.add("%s: final flush failed: %v", c.name, err)
			}
			bm.AddPubSample(bench.NewSample(share, *msgSize, start, time.Now(), c.nc))
		}(shares[i], c, pjs)
	}
	close(gate)
	wg.Wait()
	closing.Store(true)
	bm.Close()
	fmt.Println()
	fmt.Print(bm.Report())
	fmt.Println()

	var failures []string
	if f := failed.Load(); f > 0 {
		failures = append(failures, fmt.Sprintf("%d publish(es) without a positive PubAck", f))
	}
	after, err := js.StreamInfo(*jsStream)
	stored := int64(-1)
	if err != nil {
		failures = append(failures, fmt.Sprintf("stream info after publishing: %v", err))
	} else {
		stored = int64(after.State.Msgs - before.State.Msgs)
		fmt.Printf("Stream %s: %s messages stored by this run (%s published)\n", *jsStream, commas(stored), commas(int64(*numMsgs)))
		if stored != int64(*numMsgs) {
			failures = append(failures, fmt.Sprintf("stream %s holds %s new messages, published %s", *jsStream, commas(stored), commas(int64(*numMsgs))))
		}
	}
	var pubRate int64
	if bm.Pubs.HasSamples() {
		pubRate = bm.Pubs.Rate()
	}
	return jsVerdict("jspub", pubRate, 0, failures, stored)
}

func jsConsume(js nats.JetStreamContext, before *nats.StreamInfo) int {
	if before.State.Msgs < uint64(*numMsgs) {
		fatal("stream %s holds %d messages, fewer than -n %d", *jsStream, before.State.Msgs, *numMsgs)
	}
	_ = js.DeleteConsumer(*jsStream, *jsConsumer)
	maxAck := *numSubs * *jsBatch
	if maxAck < 10000 {
		maxAck = 10000
	}
	_, err := js.AddConsumer(*jsStream, &nats.ConsumerConfig{Durable: *jsConsumer, DeliverPolicy: nats.DeliverAllPolicy,
		AckPolicy: nats.AckExplicitPolicy, ReplayPolicy: nats.ReplayInstantPolicy, MaxAckPending: maxAck})
	if err != nil {
		fatal("creating the pull consumer: %v", err)
	}
	defer js.DeleteConsumer(*jsStream, *jsConsumer)

	type puller struct {
		*client
		sub   *nats.Subscription
		count atomic.Int64
	}
	pullers := make([]*puller, 0, *numSubs)
	for i := 0; i < *numSubs; i++ {
		c, err := connect(fmt.Sprintf("%s-sub-%d", *clientName, i+1), *subURL)
		if err != nil {
			fatal("%v", err)
		}
		defer c.nc.Close()
		sjs, err := c.nc.JetStream()
		if err != nil {
			fatal("%s: JetStream context: %v", c.name, err)
		}
		sub, err := sjs.PullSubscribe("", *jsConsumer, nats.BindStream(*jsStream))
		if err != nil {
			fatal("%s: PullSubscribe: %v", c.name, err)
		}
		pullers = append(pullers, &puller{client: c, sub: sub})
	}
	bm := bench.NewBenchmark("NATS", len(pullers), 0)
	shares := bench.MsgsPerClient(*numMsgs, len(pullers))
	var ackErrs, timeouts atomic.Int64
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, p := range pullers {
		wg.Add(1)
		go func(share int, p *puller) {
			defer wg.Done()
			<-gate
			start := time.Now()
			last := start
			for int(p.count.Load()) < share {
				want := *jsBatch
				if rest := share - int(p.count.Load()); rest < want {
					want = rest
				}
				msgs, err := p.sub.Fetch(want, nats.MaxWait(*jsTimeout))
				if err != nil && len(msgs) == 0 {
					timeouts.Add(1)
					events.add("%s: Fetch(%d) after %d messages: %v", p.name, want, p.count.Load(), err)
					break
				}
				for _, m := range msgs {
					if err := m.Ack(); err != nil && ackErrs.Add(1) <= 10 {
						events.add("%s: ack failed: %v", p.name, err)
					}
				}
				p.count.Add(int64(len(msgs)))
				last = time.Now()
			}
			bm.AddSubSample(bench.NewSample(int(p.count.Load()), *msgSize, start, last, p.nc))
		}(shares[i], p)
	}
	close(gate)
	wg.Wait()
	// The acks are sent without waiting: flush them before looking at the consumer.
	for _, p := range pullers {
		if err := p.nc.FlushTimeout(*jsTimeout); err != nil {
			events.add("%s: final flush failed: %v", p.name, err)
		}
	}
	bm.Close()
	fmt.Println()
	fmt.Print(bm.Report())
	fmt.Println()

	var failures []string
	counts := make([]string, len(pullers))
	var total int64
	for i, p := range pullers {
		c := p.count.Load()
		total += c
		counts[i] = fmt.Sprint(c)
		tag := "ok"
		if c < int64(shares[i]) {
			tag = fmt.Sprintf("LOST %s", commas(int64(shares[i])-c))
			failures = append(failures, fmt.Sprintf("subscriber %d received only %s of %s", i+1, commas(c), commas(int64(shares[i]))))
		}
		fmt.Printf("Subscriber %d: fetched and acked %s of %s %s\n", i+1, commas(c), commas(int64(shares[i])), tag)
	}
	if n := ackErrs.Load(); n > 0 {
		failures = append(failures, fmt.Sprintf("%d ack(s) failed", n))
	}
	// Every ack must have reached the consumer (checked after the acks' flush).
	deadline := time.Now().Add(*jsTimeout)
	for {
		ci, err := js.ConsumerInfo(*jsStream, *jsConsumer)
		if err != nil {
			failures = append(failures, fmt.Sprintf("consumer info: %v", err))
			break
		}
		if ci.NumAckPending == 0 || time.Now().After(deadline) {
			fmt.Printf("Consumer %s: delivered stream seq %d, ack floor %d, %d pending acks, %d redelivered\n",
				*jsConsumer, ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumAckPending, ci.NumRedelivered)
			if ci.NumAckPending != 0 {
				failures = append(failures, fmt.Sprintf("%d messages still wait for their ack", ci.NumAckPending))
			}
			if ci.AckFloor.Consumer < uint64(total) {
				failures = append(failures, fmt.Sprintf("ack floor %d below the %d messages acked", ci.AckFloor.Consumer, total))
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var subRate int64
	if bm.Subs.HasSamples() {
		subRate = bm.Subs.Rate()
	}
	return jsVerdictCounts("jsconsume", 0, subRate, failures, total, strings.Join(counts, ","))
}

func jsVerdict(mode string, pubRate, subRate int64, failures []string, count int64) int {
	return jsVerdictCounts(mode, pubRate, subRate, failures, count, fmt.Sprint(count))
}

func jsVerdictCounts(mode string, pubRate, subRate int64, failures []string, count int64, counts string) int {
	evs := events.all()
	if len(evs) > 0 {
		fmt.Printf("Asynchronous events (%d):\n", len(evs))
		for _, e := range evs {
			fmt.Printf("  %s\n", e)
		}
	}
	status := "ok"
	if len(failures) > 0 {
		status = "FAILED"
		fmt.Printf("\n!!!!!!!! FAILED: %s\n", strings.Join(failures, "; "))
		fmt.Fprintf(os.Stderr, "gobench: FAILED: %s\n", strings.Join(failures, "; "))
	}
	lost := int64(*numMsgs) - count
	if lost < 0 {
		lost = 0
	}
	fmt.Printf("GOBENCH_RESULT status=%s mode=%s pub_rate=%d sub_rate=%d lat_p50_us= lat_p99_us= published=%d expected=%d sub_counts=%s lost=%d events=%d\n",
		status, mode, pubRate, subRate, count, *numMsgs, counts, lost, len(evs))
	if status != "ok" {
		return 1
	}
	return 0
}
