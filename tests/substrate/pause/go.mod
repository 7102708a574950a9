module pvtapi.local/pause

go 1.25
