package bundle

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/triggerbus/triggerbus/config"
)

// Paths inside a bundle.
const (
	scriptsDir = "scripts" // the FDL scripts of scripts.dir
	luaDir     = "lua"     // the lua files of functions
	caDir      = "ca"      // the CA files of webhooks
)

// FromConfig makes an unsealed bundle of the functions of cfg: the file
// functions.yaml with its functions list (as written in cfg.File, with
// lua.file and webhook.ca pointing into the bundle), the *.lua files of
// cfg.Scripts.Dir under scripts/, and the files functions reference under
// lua/ and ca/. Paths in cfg are read as the config loader reads them
// (relative to the working directory). Exec commands are listed in the
// manifest, not copied. The caller fills in the manifest's functions,
// author and message, and checks the functions first: FromConfig does not
// validate them.
func FromConfig(cfg config.Config) (*Bundle, error) {
	files := map[string][]byte{}
	from := map[string]string{} // bundle path -> source path
	add := func(dir, src string) (string, error) {
		abs, err := filepath.Abs(src)
		if err != nil {
			return "", err
		}
		base := filepath.Base(src)
		ext := path.Ext(base)
		p := path.Join(dir, base)
		for n := 2; from[p] != "" && from[p] != abs; n++ {
			p = path.Join(dir, fmt.Sprintf("%s-%d%s", strings.TrimSuffix(base, ext), n, ext))
		}
		if from[p] == abs {
			return p, nil
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return "", fmt.Errorf("bundle: %w", err)
		}
		files[p], from[p] = data, abs
		return p, nil
	}

	doc := &yaml.Node{Kind: yaml.MappingNode}
	var commands []string
	if len(cfg.Functions) > 0 {
		list, err := functionsNode(cfg.File, len(cfg.Functions))
		if err != nil {
			return nil, err
		}
		for i, f := range cfg.Functions {
			item := list.Content[i]
			if f.Lua != nil {
				p, err := add(luaDir, f.Lua.File)
				if err != nil {
					return nil, err
				}
				if !setScalar(item, p, "lua", "file") {
					return nil, fmt.Errorf("bundle: %s functions[%d].lua.file: not a plain value that can point into the bundle (an anchor or merge key?)", cfg.File, i)
				}
			}
			if f.Webhook != nil && f.Webhook.CA != "" {
				p, err := add(caDir, f.Webhook.CA)
				if err != nil {
					return nil, err
				}
				if !setScalar(item, p, "webhook", "ca") {
					return nil, fmt.Errorf("bundle: %s functions[%d].webhook.ca: not a plain value that can point into the bundle (an anchor or merge key?)", cfg.File, i)
				}
			}
			if f.Exec != nil && len(f.Exec.Command) > 0 && !slices.Contains(commands, f.Exec.Command[0]) {
				commands = append(commands, f.Exec.Command[0])
			}
		}
		doc.Content = append(doc.Content, scalar("functions"), list)
	}
	if cfg.Scripts.Dir != "" {
		entries, err := os.ReadDir(cfg.Scripts.Dir)
		if err != nil {
			return nil, fmt.Errorf("bundle: scripts.dir: %w", err)
		}
		n := 0
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".lua") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(cfg.Scripts.Dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("bundle: %w", err)
			}
			files[path.Join(scriptsDir, e.Name())] = data
			n++
		}
		if n > 0 {
			doc.Content = append(doc.Content, scalar("scripts"),
				&yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{scalar("dir"), scalar(scriptsDir)}})
		}
	}
	var buf bytes.Buffer
	buf.WriteString("# The function definitions of a triggerbus bundle. Paths are relative to\n# this file; exec commands are paths of each worker's host.\n")
	if len(doc.Content) > 0 {
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return nil, fmt.Errorf("bundle: %s: %w", config.DefinitionsFile, err)
		}
		if err := enc.Close(); err != nil {
			return nil, err
		}
	}
	files[config.DefinitionsFile] = buf.Bytes()
	return New(Manifest{Commands: commands}, files)
}

// functionsNode returns the node of the functions list of the YAML file at
// file, which must have n items (those config.Load read).
func functionsNode(file string, n int) (*yaml.Node, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("bundle: %s: %w", file, err)
	}
	if len(root.Content) == 1 {
		if list := child(root.Content[0], "functions"); list != nil && list.Kind == yaml.SequenceNode && len(list.Content) == n {
			return list, nil
		}
	}
	return nil, fmt.Errorf("bundle: %s: the functions list is not as the config loader read it", file)
}

// child returns the value of key in mapping m (keys are case-insensitive,
// as in the config), or nil.
func child(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) {
			return m.Content[i+1]
		}
	}
	return nil
}

// setScalar sets the scalar at the path of keys under m to value, and
// reports whether there was one.
func setScalar(m *yaml.Node, value string, keys ...string) bool {
	for _, k := range keys {
		m = child(m, k)
	}
	if m == nil || m.Kind != yaml.ScalarNode {
		return false
	}
	m.Value, m.Tag, m.Style = value, "!!str", 0
	return true
}

func scalar(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
