{#- One row per customer. When an id repeats, the declared order (deduplicate.latest_first)
    says which record is the latest; the row further down the file breaks ties, as exports
    append newer records. Each attribute comes from the latest record that has it, so a gap
    in the latest record is filled, not imputed.
    Only the records of repeated ids are ranked and merged: a record whose id is seen once is
    its customer as it stands (the rank and the merge would return it unchanged, at the cost
    of a sort and an aggregate over every row). The validated table is read where needed
    rather than through one shared CTE, which an engine may materialise whole. -#}
{%- set decl = declaration() -%}
{%- set columns = kept_columns() -%}

with

repeated_ids as (

    select customer_id
    from {{ ref('int_customers_validated') }}
    where quarantine_reason is null
    group by customer_id
    having count(*) > 1

),

single_records as (

    select
        customer_id,
        {%- for column in columns %}
        {{ column.name }},
        {%- endfor %}
        source_row_number,
        cast(1 as bigint) as records_merged

    from {{ ref('int_customers_validated') }}
    where quarantine_reason is null
        and customer_id not in (select repeated_ids.customer_id from repeated_ids)

),

repeated_records as (

    select * from {{ ref('int_customers_validated') }}
    where quarantine_reason is null
        and customer_id in (select repeated_ids.customer_id from repeated_ids)

),

ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by
                {%- for item in decl.latest_first %}
                {{ item.name }} {{ item.order }} nulls last,
                {%- endfor %}
                source_row_number desc
        ) as recency_rank

    from repeated_records

),

merged as (

    -- min_by skips a record whose value is missing: its ordering value is NULL then
    select
        customer_id,
        {%- for column in columns %}
        min_by({{ column.name }}, case when {{ column.name }} is not null then recency_rank end) as {{ column.name }},
        {%- endfor %}
        min_by(source_row_number, recency_rank) as source_row_number,
        count(*) as records_merged

    from ranked
    group by customer_id

),

final as (

    select * from single_records
    union all
    select * from merged

)

select * from final
