import sys, statistics as st
for path in sys.argv[1:]:
    rows=[l.split() for l in open(path)]
    print("==", path)
    for w,name in ((0,"glu"),(1,"combine")):
        R=[[int(x) for x in r[2:]] for r in rows if r[0]==str(w)]
        ref=min(r[1] for r in R if r[1])
        def col(k, sel=lambda r: True):
            v=[(r[k]-ref)/1000 for r in R if r[k] and sel(r)]
            return v
        groups = [("routed", lambda r: r[15]==1), ("shared", lambda r: r[15]==0)] if w==0 else [("all", lambda r: True)]
        labels = {0:["start","wait","route","staged(w2)","barrier","batch1(w3)","","","","","","","","end"],
                  1:["start","wait","idx(w3)","staged(w2)","barrier","rows(w3)","sums(w3)","","","","","","","end"]}[w]
        for gname, sel in groups:
            n=len([r for r in R if sel(r)])
            out=[]
            for k,lab in enumerate(labels):
                if not lab: continue
                v=col(k, sel)
                if not v: continue
                out.append("%s %.2f/%.2f" % (lab, st.median(v), max(v)))
            print(" %s %s n=%d: %s" % (name, gname, n, "  ".join(out)))
