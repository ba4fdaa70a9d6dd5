// An example of driving peerlab from Go with the standard library only: bring up three
// syncpeer nodes, partition them, check that a file cannot cross the cut, heal, check
// that it arrives, and tear the network down. The calls are peerlab's HTTP/JSON control
// API (docs/api.md, docs/api/openapi.json): POST /v1/NAMESPACE/VERB with a JSON object of
// arguments, answered with {"result": ...} or {"error", "hint", "usage", "status"}.
//
//	PEERLAB=/path/to/peerlab go test -v ./...
package peerlabexample

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const envName = "go-example"

// API is a peerlab network's control API on loopback TCP.
type API struct {
	URL   string
	Token string
}

// APIError is an error answer of the API.
type APIError struct {
	Message string `json:"error"`
	Hint    string `json:"hint"`
	Usage   bool   `json:"usage"`
	Status  int    `json:"status"`
}

func (e *APIError) Error() string { return fmt.Sprintf("%d: %s (%s)", e.Status, e.Message, e.Hint) }

// Call runs one operation ("net.partition") with its arguments; the result goes into out.
func (api API) Call(operation string, args map[string]any, out any) error {
	if args == nil {
		args = map[string]any{} // no arguments: an empty object
	}
	body, err := json.Marshal(args)
	if err != nil {
		return err
	}
	url := api.URL + "/v1/" + strings.Replace(operation, ".", "/", 1)
	request, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	request.Header.Set("Content-Type", "application/json")
	request.Header.Set("Authorization", "Bearer "+api.Token)
	response, err := (&http.Client{Timeout: 5 * time.Minute}).Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		failure := &APIError{}
		if err := json.NewDecoder(response.Body).Decode(failure); err != nil {
			return fmt.Errorf("%s: HTTP %d", operation, response.StatusCode)
		}
		return failure
	}
	answer := struct {
		Result json.RawMessage `json:"result"`
	}{}
	if err := json.NewDecoder(response.Body).Decode(&answer); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(answer.Result, out)
}

func peerlab(t *testing.T, args ...string) string {
	t.Helper()
	program := os.Getenv("PEERLAB")
	if program == "" {
		program = "peerlab"
	}
	output, err := exec.Command(program, append([]string{"--env", envName}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("peerlab %s: %v\n%s", strings.Join(args, " "), err, output)
	}
	return string(output)
}

// up starts the network with its API on a free loopback port and reads where it listens.
func up(t *testing.T) API {
	peerlab(t, "up", "--peers", "3", "--api-port", "0")
	t.Cleanup(func() { peerlab(t, "down", "--no-results") })
	home := os.Getenv("PEERLAB_HOME")
	if home == "" {
		userHome, _ := os.UserHomeDir()
		home = filepath.Join(userHome, ".peerlab")
	}
	raw, err := os.ReadFile(filepath.Join(home, "envs", envName, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	state := struct {
		API struct {
			URL       string `json:"url"`
			TokenFile string `json:"token_file"`
		} `json:"api"`
	}{}
	if err := json.Unmarshal(raw, &state); err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(state.API.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return API{URL: state.API.URL, Token: strings.TrimSpace(string(token))}
}

func fileOn(api API, peer, name string) (string, error) {
	var content string
	if err := api.Call("adapter.file_cat", map[string]any{"b": peer, "name": name}, &content); err != nil {
		return "", err
	}
	text, err := base64.StdEncoding.DecodeString(content)
	return string(text), err
}

func TestPartitionThenHeal(t *testing.T) {
	api := up(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(api.Call("adapter.friend_add", map[string]any{"a": "A", "b": "B"}, nil))
	groups := [][]string{{"A"}, {"B", "C"}}
	must(api.Call("net.partition", map[string]any{"groups": groups}, nil))
	var shown struct {
		Cut [][]string `json:"cut"`
	}
	must(api.Call("net.show", nil, &shown))
	if !containsPair(shown.Cut, "A", "B") {
		t.Fatalf("A -/-> B is not cut: %v", shown.Cut)
	}

	note := base64.StdEncoding.EncodeToString([]byte("hello from Go"))
	args := map[string]any{"a": "A", "name": "go.txt", "content_b64": note, "recipients": []string{"B"}}
	must(api.Call("adapter.file_add", args, nil))
	time.Sleep(3 * time.Second)
	if text, err := fileOn(api, "B", "go.txt"); err == nil {
		t.Fatalf("B read %q across the partition", text)
	} else {
		t.Logf("partitioned: B cannot read go.txt: %v", err)
	}

	must(api.Call("net.heal", nil, nil))
	deadline := time.Now().Add(60 * time.Second)
	for {
		text, err := fileOn(api, "B", "go.txt")
		if err == nil && text == "hello from Go" {
			t.Logf("healed: B read %q", text)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("B never read go.txt after the heal: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestErrorsHaveOneShape(t *testing.T) {
	api := up(t)
	err := api.Call("env.kill", map[string]any{"name": "no-such-peer"}, nil)
	failure, ok := err.(*APIError)
	if !ok || failure.Status != http.StatusBadRequest || !failure.Usage || failure.Hint == "" {
		t.Fatalf("expected a usage error with a hint, got %#v", err)
	}
}

func containsPair(pairs [][]string, a, b string) bool {
	for _, pair := range pairs {
		if len(pair) == 2 && pair[0] == a && pair[1] == b {
			return true
		}
	}
	return false
}
