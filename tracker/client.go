package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// UnmarshalJSON decodes a 20-character binary string.
func (id *ID) UnmarshalJSON(b []byte) error {
	v, err := parseID(b, fmt.Errorf("tracker: %q is not a 20-byte binary string", b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// Message is anything a tracker sends: an announce reply, a relayed offer or answer, a scrape reply or a
// failure. Which fields are set tells which it is.
type Message struct {
	Action        string                `json:"action"`
	InfoHash      ID                    `json:"info_hash"`
	PeerID        ID                    `json:"peer_id"`
	OfferID       ID                    `json:"offer_id"`
	Offer         json.RawMessage       `json:"offer"`
	Answer        json.RawMessage       `json:"answer"`
	Interval      int                   `json:"interval"`
	Complete      int                   `json:"complete"`
	Incomplete    int                   `json:"incomplete"`
	FailureReason string                `json:"failure reason"`
	Files         map[string]ScrapeFile `json:"files"`
}

// Announce is what a client announces for one torrent.
type Announce struct {
	InfoHash   ID
	PeerID     ID
	Event      string // empty for an update
	NumWant    int
	Uploaded   int64
	Downloaded int64
	Left       int64 // -1 when unknown
	Offers     []Offer
}

// Client is a WebTorrent tracker client: one socket, any number of torrents. Incoming messages arrive on
// Messages until the socket closes.
type Client struct {
	ws   *websocket.Conn
	wmu  sync.Mutex
	msgs chan *Message
	done chan struct{}
	err  error // why the read loop ended; read after done is closed
}

// clientQueue is how many incoming messages a Client holds for a reader that is not keeping up; the socket is
// not read while the queue is full, which is the tracker's cue that this client is slow.
const clientQueue = 64

// Dial connects to a tracker at a ws:// or wss:// URL.
func Dial(ctx context.Context, url string, header http.Header) (*Client, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, header)
	if err != nil {
		return nil, fmt.Errorf("tracker: dial %s: %w", url, err)
	}
	c := &Client{ws: ws, msgs: make(chan *Message, clientQueue), done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func (c *Client) readLoop() {
	defer close(c.done)
	defer close(c.msgs)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		m := new(Message)
		if err := json.Unmarshal(data, m); err != nil || m.Action == "" {
			c.err = fmt.Errorf("%w: %.200s", ErrUnexpectedMessage, data)
			_ = c.ws.Close()
			return
		}
		c.msgs <- m
	}
}

// Messages delivers what the tracker sends. It is closed when the socket closes; Err then says why.
func (c *Client) Messages() <-chan *Message { return c.msgs }

// Err reports why the socket closed, once Messages is closed.
func (c *Client) Err() error {
	<-c.done
	return c.err
}

// Send writes one JSON message.
func (c *Client) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("tracker: encode: %w", err)
	}
	return c.SendRaw(b)
}

// SendRaw writes one text frame as it is.
func (c *Client) SendRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(DefaultWriteTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("tracker: send: %w", err)
	}
	return nil
}

type wireOffer struct {
	OfferID ID              `json:"offer_id"`
	Offer   json.RawMessage `json:"offer"`
}

// Announce sends an announce.
func (c *Client) Announce(a Announce) error {
	offers := make([]wireOffer, len(a.Offers))
	for i, o := range a.Offers {
		offers[i] = wireOffer{o.ID, o.SDP}
	}
	return c.Send(struct {
		Action     string      `json:"action"`
		InfoHash   ID          `json:"info_hash"`
		PeerID     ID          `json:"peer_id"`
		Event      string      `json:"event,omitempty"`
		NumWant    int         `json:"numwant"`
		Uploaded   int64       `json:"uploaded"`
		Downloaded int64       `json:"downloaded"`
		Left       int64       `json:"left"`
		Offers     []wireOffer `json:"offers,omitempty"`
	}{ActionAnnounce, a.InfoHash, a.PeerID, a.Event, a.NumWant, a.Uploaded, a.Downloaded, a.Left, offers})
}

// SendAnswer answers an offer that the tracker relayed from peer `to`.
func (c *Client) SendAnswer(infoHash, peerID, to, offerID ID, answer json.RawMessage) error {
	return c.Send(struct {
		Action   string          `json:"action"`
		InfoHash ID              `json:"info_hash"`
		PeerID   ID              `json:"peer_id"`
		ToPeerID ID              `json:"to_peer_id"`
		OfferID  ID              `json:"offer_id"`
		Answer   json.RawMessage `json:"answer"`
	}{ActionAnnounce, infoHash, peerID, to, offerID, answer})
}

// Scrape asks for the counts of the given swarms, or of all swarms when none is given.
func (c *Client) Scrape(infoHashes ...ID) error {
	type scrape struct {
		Action   string `json:"action"`
		InfoHash []ID   `json:"info_hash,omitempty"`
	}
	return c.Send(scrape{ActionScrape, infoHashes})
}

// Close closes the socket and waits for the read loop to end.
func (c *Client) Close() error {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	c.wmu.Unlock()
	err := c.ws.Close()
	for range c.msgs { // unblock the read loop if it waits on a full queue
	}
	<-c.done
	return err
}
